"""The status service's settings (env prefix `STATUS_`). Built in `bootstrap`, never at import."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATUS_", extra="ignore")

    http_port: int = 8002
    # Dashboards poll the batch status hundreds of times a second: the C event loop and parser halve the
    # cost of each request (ADR 0053).
    http_loop: Literal["asyncio", "uvloop"] = "uvloop"
    http_parser: Literal["h11", "httptools"] = "httptools"
    consumer_group: str = Field(default="status", description="Kafka consumer group of the projector.")
    project: bool = Field(
        default=True,
        description="Run the projector in this process. Exactly one process projects (ADR 0040); API-only "
        "replicas set this to false.",
    )
    deliver_webhooks: bool = Field(default=True, description="Run the webhook delivery task in this process.")
    chunk_max_records: int = Field(default=5000, ge=1, description="Most records one poll returns.")
    catchup_max_records: int = Field(
        default=60_000, ge=1, description="While behind, polls join one chunk up to this many records."
    )
    catchup_max_ms: int = Field(default=3_000, ge=0, description="... or until this long has passed.")
    projector_stall_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A projector round that has not ended after this long counts as stalled: /healthz fails "
        "and the process restarts (a chunk of 60,000 records takes well under a minute).",
    )
    chunk_wait_ms: int = Field(default=100, ge=0, description="How long a poll waits for records.")
    cache_size: int = Field(
        default=200_000,
        ge=0,
        description="Call documents the projector keeps in memory (about 1.7 KB each). A batch larger than "
        "this has its calls read back from the store while it is projected: at 100,000 contacts and a cache "
        "of 50,000, that reading was most of FerretDB's work (bench.pipeline).",
    )
    notice_max_age_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        description="Webhook notices older than this (a replay of history) are not sent.",
    )
    status_cache_ms: int = Field(
        default=200, ge=0, description="How long the API reuses a batch document it read (freshness bound)."
    )
    sse_poll_ms: int = Field(
        default=250, ge=10, description="How often the live stream looks for new entries."
    )
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_seconds: float = Field(
        default=2.0, gt=0, description="First retry wait; doubles each time."
    )
    webhook_backoff_max_seconds: float = Field(default=600.0, gt=0)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
