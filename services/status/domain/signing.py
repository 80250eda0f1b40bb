"""Webhook signatures: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

Signing the timestamp with the body lets receivers reject replays (an old `t`) as well as forgeries.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Batchcalls-Signature"
REFERENCE_SIGNATURE_HEADER = "X-Trillet-Signature"
"""Sent with the same value, for clients written against the reference product."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance_seconds: int = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")
