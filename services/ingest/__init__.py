"""The ingest service: the public API a client starts batches with (upload, validate, template, agents,
do-not-call entries, cancel / pause / resume), and the pipeline that turns an upload into contact events."""
