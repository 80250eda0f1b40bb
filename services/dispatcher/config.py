"""The dispatcher's settings (env prefix `DISPATCHER_`). Built in `bootstrap`, never at import."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DISPATCHER_", extra="ignore")

    http_port: int = 8003
    consumer_group: str = Field(default="dispatcher", description="Kafka consumer group of all replicas.")
    state_db: str = Field(
        default="",
        description="Database of the dispatcher's own state; default `<BC_MONGO_DB>_dispatch`. Kept apart "
        "because the queue creates and drops many small collections (see ADR 0022).",
    )
    poll_max_records: int = Field(default=2000, ge=1, description="Most messages applied in one step.")
    max_round: int = Field(default=2000, ge=1, description="Most call requests one workspace round emits.")
    in_flight_seconds: float = Field(
        default=2.0,
        ge=0,
        description="Seconds of a workspace's recent start rate that may wait for their start at once "
        "(the dialers' back-pressure); 0: no window.",
    )
    lease_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Added to the agent's longest call before a silent call's slot is freed.",
    )
    plan_cache_seconds: float = Field(default=5.0, ge=0, description="How soon a plan change applies.")

    def state_database(self) -> str:
        return self.state_db or f"{self.infra.mongo_db}_dispatch"
