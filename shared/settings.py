"""Settings every service shares. Nothing is read at import: a service builds its settings in `bootstrap`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class InfraSettings(BaseSettings):
    """Where Kafka and MongoDB are. One `BC_` prefix for all services, so one ConfigMap serves them all."""

    model_config = SettingsConfigDict(env_prefix="BC_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "bc."
    topic_replication: int = Field(default=1, ge=1, description="Replication factor for topics we create.")
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_db: str = "batchcalls"
    mongo_max_pool: int = Field(
        default=16,
        ge=1,
        description="Connections per process. FerretDB's SQLite backend stalls when ~100 operations on one "
        "database overlap a collection create (ADR 0004), so keep the sum across processes well below that.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP endpoint, e.g. http://collector:4318"
    )
    mongo_command_metrics: bool = Field(
        default=False,
        description="Count the commands sent to the store, the documents they wrote or returned and the time "
        "they took, per collection (`batchcalls_mongo_*`): which collection a service's store time goes to.",
    )
    gc_freeze: bool = Field(
        default=True, description="Freeze what exists when serving starts: collections never walk it again."
    )
    gc_gen0_threshold: int = Field(
        default=20_000,
        ge=100,
        description="Allocations between young garbage collections (CPython's default is 700); see ADR 0056.",
    )


class ServiceSettings(BaseSettings):
    """Base of each service's settings class; subclasses set their own `env_prefix`."""

    model_config = SettingsConfigDict(extra="ignore")

    infra: InfraSettings = Field(default_factory=InfraSettings)
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    instance_id: str = Field(default="", description="Defaults to host name and pid; names the Kafka client.")
    http_loop: Literal["asyncio", "uvloop"] = Field(
        default="asyncio", description="The event loop uvicorn runs the service on (ADR 0053)."
    )
    http_parser: Literal["h11", "httptools"] = Field(
        default="h11", description="uvicorn's HTTP/1.1 implementation (ADR 0053)."
    )
