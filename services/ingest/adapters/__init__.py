"""Concrete adapters of the ingest ports: MongoDB stores, Kafka, validation workers, CSV threads."""
