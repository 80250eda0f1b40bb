"""Authentication and request limits for the public API, shared by ingest and status.

Every request carries `x-api-key` and `x-workspace-id`. A key acts for its own workspace only: a valid key
naming another workspace is a 403, an unknown or wrong key a 401. Over the plan's requests per minute: 429
with `Retry-After`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from shared.http import ApiError
from shared.workspaces import Plan, Workspace, WorkspaceDirectory


@dataclass(frozen=True)
class Caller:
    """Who is asking: the authenticated workspace and its plan."""

    workspace: Workspace

    @property
    def workspace_id(self) -> str:
        return self.workspace.workspace_id

    @property
    def plan(self) -> Plan:
        return self.workspace.plan


class RequestLimiter:
    """A sliding one-minute window of request times per workspace (per process; the gateway spreads load)."""

    def __init__(self, window_seconds: float = 60.0) -> None:
        self._window = window_seconds
        self._seen: dict[str, deque[float]] = {}

    def admit(self, workspace_id: str, per_window: int, now: float) -> float | None:
        """None when admitted, else the seconds to wait before the next request would be."""
        times = self._seen.setdefault(workspace_id, deque())
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) >= per_window:
            return self._window - (now - times[0])
        times.append(now)
        return None


# Dependencies are coroutines so FastAPI calls them on the event loop: a plain `def` would be handed to
# the thread pool on every request, a thread round trip that cost more than the rest of a cached status GET.
async def directory_of(request: Request) -> WorkspaceDirectory:
    directory: WorkspaceDirectory = request.app.state.workspaces
    return directory


async def limiter_of(request: Request) -> RequestLimiter:
    limiter: RequestLimiter = request.app.state.request_limiter
    return limiter


async def authenticate(
    directory: Annotated[WorkspaceDirectory, Depends(directory_of)],
    limiter: Annotated[RequestLimiter, Depends(limiter_of)],
    x_api_key: Annotated[str | None, Header()] = None,
    x_workspace_id: Annotated[str | None, Header()] = None,
) -> Caller:
    if not x_api_key:
        raise ApiError(401, "unauthorized", "missing x-api-key header")
    if not x_workspace_id:
        raise ApiError(401, "unauthorized", "missing x-workspace-id header")
    owner = await directory.key_owner(x_api_key)
    if owner is None:
        raise ApiError(401, "unauthorized", "invalid API key")
    if owner != x_workspace_id:
        raise ApiError(403, "forbidden", "this API key does not belong to that workspace")
    workspace = await directory.workspace(owner)
    if workspace is None:
        raise ApiError(403, "forbidden", "the workspace of this API key no longer exists")
    wait = limiter.admit(owner, workspace.plan.requests_per_minute, time.monotonic())
    if wait is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"more than {workspace.plan.requests_per_minute} requests per minute for this workspace",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return Caller(workspace=workspace)


CurrentCaller = Annotated[Caller, Depends(authenticate)]
"""Declare a parameter of this type to require an authenticated, rate-limited caller."""
