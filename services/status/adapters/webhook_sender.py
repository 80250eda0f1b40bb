"""Webhook delivery over HTTP with httpx."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


class HttpxSender:
    """`WebhookSender` over one pooled httpx client; redirects are not followed."""

    def __init__(self, timeout_seconds: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(
            timeout=timeout_seconds, follow_redirects=False, transport=transport, trust_env=False
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int | None, str | None]:
        try:
            response = await self._client.post(url, content=body, headers=dict(headers))
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]
        error = None if response.is_success else response.text[:300]
        return response.status_code, error

    async def aclose(self) -> None:
        await self._client.aclose()
