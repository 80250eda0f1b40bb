"""Ingest settings (env prefix `INGEST_`); built by `bootstrap`, never at import."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    http_port: int = 8001
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    upload_chunk_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=8 * 1024 * 1024,
        description="Stored zlib-compressed: ~1 MB each.",
    )
    validation_workers: int = Field(
        default=2,
        ge=0,
        description="Processes that validate numbers; 0 validates in a thread of this process.",
    )
    rows_per_block: int = Field(default=2_000, ge=1)
    blocks_ahead: int = Field(default=3, ge=1, description="Blocks in the validation workers at once.")
    blocks_unacknowledged: int = Field(
        default=4,
        ge=1,
        description="Blocks sent to Kafka and not yet acknowledged; a crash re-sends at most this many.",
    )
    concurrent_ingestions: int = Field(default=2, ge=1)
    resume_stale_seconds: float = Field(
        default=30.0, ge=0, description="An unfinished batch whose cursor has not moved this long is resumed."
    )
    resume_check_seconds: float = Field(default=15.0, gt=0)
    kafka_batch_bytes: int = Field(default=1 << 20, ge=16 * 1024)
    kafka_linger_ms: int = Field(default=5, ge=0)
