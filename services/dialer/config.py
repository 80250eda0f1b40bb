"""The dialer's settings (env prefix `DIALER_`). Built in `bootstrap`, never at import."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from dialer.domain.simulation import parse_mix
from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    http_port: int = 8004
    provider: Literal["simulated", "sip"] = "simulated"
    consumer_group: str = Field(default="dialer", description="Kafka consumer group of all dialer replicas.")
    max_active_calls: int = Field(default=2000, ge=1, description="Calls (and requests) handled at once.")
    drain_seconds: float = Field(
        default=30.0, ge=0, description="On SIGTERM, how long active calls may go on."
    )
    ring_timeout_seconds: float = Field(default=30.0, gt=0)
    poll_max_records: int = Field(default=1000, ge=1, description="Most call requests claimed in one go.")
    commit_interval_seconds: float = Field(default=1.0, gt=0)

    sim_seed: int = 1
    sim_time_scale: float = Field(
        default=1.0, ge=0, description="1 real time, 0.1 ten times faster, 0 instant."
    )
    sim_outcomes: str = Field(
        default="",
        description="The simulated outcome mix as `outcome=weight,...` (e.g. `completed=0.8,busy=0.2`); "
        "empty: a plausible campaign's (dialer.domain.simulation.DEFAULT_MIX).",
    )
    sim_dial_log: str = Field(
        default="",
        description="Append one JSON line per dial and per hang-up to this file (an independent record "
        "of what was dialed, for fault-injection runs); empty: no log.",
    )

    @field_validator("sim_outcomes")
    @classmethod
    def _known_mix(cls, value: str) -> str:
        parse_mix(value)  # a typo fails at start-up with the bad item named, not at the first call
        return value

    sip_bind_host: str = "127.0.0.1"
    sip_bind_port: int = Field(default=0, ge=0, description="Local UDP port; 0 picks a free one.")
    sip_trunk_uri: str = Field(
        default="sip:{number}@127.0.0.1:5070",
        description="Where a number is sent: `{number}` becomes the E.164 number.",
    )
    sip_caller_id: str = "sip:dialer@127.0.0.1"
    sip_max_calls: int = Field(default=32, ge=1, le=32, description="PJSIP's compiled limit is 32 calls.")
    sip_no_response_seconds: float = Field(
        default=8.0, gt=0, description="No reply at all to an INVITE for this long: give up (system error)."
    )
