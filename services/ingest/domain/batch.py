"""A batch as ingest records it, and the publishing cursor that lets a crashed ingestion resume."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.events import AgentSnapshot, BatchAccepted, BatchIngested, CallingWindowSpec, RetryPolicySpec

Lifecycle = Literal["active", "paused", "cancelled"]


class BatchRecord(BaseModel):
    """Everything needed to (re)publish a batch: its options, agent snapshot and stored upload."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    batch_id: str
    workspace_id: str
    name: str | None = None
    agent: AgentSnapshot
    total_rows: int
    upload_bytes: int
    upload_chunks: int
    default_region: str | None = None
    created_at: AwareDatetime
    scheduled_at: AwareDatetime | None = None
    calling_window: CallingWindowSpec | None = None
    retry_policy: RetryPolicySpec = RetryPolicySpec()
    webhook_url: str | None = None
    dry_run: bool = False
    lifecycle: Lifecycle = "active"

    def accepted_event(self, now: datetime) -> BatchAccepted:
        return BatchAccepted(
            occurred_at=now,
            workspace_id=self.workspace_id,
            correlation_id=self.batch_id,
            batch_id=self.batch_id,
            name=self.name,
            total_rows=self.total_rows,
            agent=self.agent,
            scheduled_at=self.scheduled_at,
            calling_window=self.calling_window,
            retry_policy=self.retry_policy,
            webhook_url=self.webhook_url,
            dry_run=self.dry_run,
            created_at=self.created_at,
        )


class PublishCursor(BaseModel):
    """How far publishing got: rows up to `rows_done` are acknowledged by Kafka. One writer: the publisher."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    batch_id: str
    workspace_id: str
    state: Literal["publishing", "ingested", "failed"] = "publishing"
    accepted_published: bool = False
    rows_done: int = 0
    accepted: int = 0
    skipped: int = 0
    updated_at: AwareDatetime
    detail: str = ""

    def ingested_event(self, now: datetime, total_rows: int) -> BatchIngested:
        return BatchIngested(
            occurred_at=now,
            workspace_id=self.workspace_id,
            correlation_id=self.batch_id,
            batch_id=self.batch_id,
            total_rows=total_rows,
            accepted=self.accepted,
            skipped=self.skipped,
        )
