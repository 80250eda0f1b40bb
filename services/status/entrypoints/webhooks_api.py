"""Webhook endpoints of a workspace: register (the secret is shown once), list, delete, delivery log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, field_validator

from shared.api_auth import CurrentCaller
from shared.http import ApiError
from status.adapters.mongo_webhooks import MongoWebhooks
from status.domain.notifications import WEBHOOK_EVENTS
from status.entrypoints.schemas import error_responses


class NewWebhook(BaseModel):
    url: str = Field(max_length=2000, description="http(s) URL that receives POSTed events.")
    events: list[str] = Field(default_factory=lambda: list(WEBHOOK_EVENTS), min_length=1, max_length=10)
    description: str = Field(default="", max_length=200)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value) < 10:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(WEBHOOK_EVENTS))
        if unknown:
            raise ValueError(f"unknown events {unknown}; known: {list(WEBHOOK_EVENTS)}")
        return value


class Webhook(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str = ""
    createdAt: int


class CreatedWebhook(Webhook):
    secret: str = Field(description="`whsec_...`: shown only now. Verify `X-Batchcalls-Signature` with it.")


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class Deleted(BaseModel):
    id: str
    deleted: bool


class BatchSecret(BaseModel):
    secret: str = Field(description="Signs deliveries to per-batch webhook URLs (`webhookUrl` at start).")


class Delivery(BaseModel):
    id: str
    eventId: str
    event: str
    attempt: int
    statusCode: int | None = None
    error: str | None = None
    delivered: bool
    final: bool
    at: int
    durationMs: int
    nextAttemptAt: int | None = None


class DeliveryList(BaseModel):
    endpointId: str
    deliveries: list[Delivery]


def _store(request: Request) -> MongoWebhooks:
    store: MongoWebhooks = request.app.state.webhooks
    return store


def _public(doc: dict[str, Any]) -> Webhook:
    return Webhook(
        id=doc["_id"],
        url=doc["url"],
        events=list(doc["events"]),
        description=doc.get("description", ""),
        createdAt=doc["created_at"],
    )


def webhooks_router() -> APIRouter:
    router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

    @router.post(
        "",
        status_code=201,
        response_model=CreatedWebhook,
        responses=error_responses(400, 401, 403, 429),
        summary="Register a webhook endpoint for the workspace's call and batch events",
    )
    async def create(request: Request, caller: CurrentCaller, body: NewWebhook) -> CreatedWebhook:
        doc = await _store(request).create(caller.workspace_id, body.url, body.events, body.description)
        return CreatedWebhook(**_public(doc).model_dump(), secret=doc["secret"])

    @router.get("", response_model=WebhookList, responses=error_responses(401, 403, 429), summary="List")
    async def list_all(request: Request, caller: CurrentCaller) -> WebhookList:
        return WebhookList(webhooks=[_public(d) for d in await _store(request).all(caller.workspace_id)])

    @router.post(
        "/batch-secret",
        response_model=BatchSecret,
        responses=error_responses(401, 403, 429),
        summary="Issue a new secret for per-batch webhook URLs (shown once; the old one stops at once)",
    )
    async def batch_secret(request: Request, caller: CurrentCaller) -> BatchSecret:
        return BatchSecret(secret=await _store(request).rotate_batch_secret(caller.workspace_id))

    @router.delete(
        "/{webhook_id}",
        response_model=Deleted,
        responses=error_responses(401, 403, 404, 429),
        summary="Delete",
    )
    async def delete(request: Request, caller: CurrentCaller, webhook_id: str) -> Deleted:
        if not await _store(request).delete(caller.workspace_id, webhook_id):
            raise ApiError(404, "not_found", f"webhook {webhook_id} not found")
        return Deleted(id=webhook_id, deleted=True)

    @router.get(
        "/{endpoint_id}/deliveries",
        response_model=DeliveryList,
        responses=error_responses(400, 401, 403, 404, 429),
        summary="Recent delivery attempts of an endpoint (a webhook id, or a batch id for its webhookUrl)",
    )
    async def deliveries(
        request: Request,
        caller: CurrentCaller,
        endpoint_id: str,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        days: Annotated[int, Query(ge=1, le=31, description="How many UTC days back to look")] = 7,
    ) -> DeliveryList:
        store = _store(request)
        owned = await store.get(caller.workspace_id, endpoint_id)
        if owned is None:
            batch = await request.app.state.batch_cache.get(caller.workspace_id, endpoint_id)
            if batch is None:
                raise ApiError(404, "not_found", f"endpoint {endpoint_id} not found")
        today = datetime.now(UTC).date()
        wanted = [(today - timedelta(days=i)).isoformat() for i in range(days)]
        docs = await store.deliveries(endpoint_id, wanted, limit)
        return DeliveryList(
            endpointId=endpoint_id,
            deliveries=[
                Delivery(
                    id=d["_id"],
                    eventId=d["notice_id"],
                    event=d["event"],
                    attempt=d["attempt"],
                    statusCode=d.get("status_code"),
                    error=d.get("error"),
                    delivered=d["delivered"],
                    final=d["final"],
                    at=d["at"],
                    durationMs=d["duration_ms"],
                    nextAttemptAt=d.get("next_attempt_at"),
                )
                for d in docs
            ],
        )

    return router
