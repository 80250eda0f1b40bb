"""Identifiers. Contact ids are deterministic (batch id + row) so a re-published row is the same contact."""

from __future__ import annotations


def batch_id(random_hex: str) -> str:
    return f"batch_{random_hex}"


def agent_id(random_hex: str) -> str:
    return f"agent_{random_hex}"


def contact_id(batch: str, row_number: int) -> str:
    """The public `jobId`: `{batch_id}_r{row_number}` (row 1 is the first data row)."""
    return f"{batch}_r{row_number}"
