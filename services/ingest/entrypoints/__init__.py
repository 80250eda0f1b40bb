"""How the outside reaches ingest: the FastAPI app, the streaming upload reader and the admin command."""
