"""The CSV template a client downloads: the standard columns, the agent's variables, two example rows."""

from __future__ import annotations

import csv
import io

from shared.events import AgentSnapshot

STANDARD_COLUMNS = ("phone_number", "first_name", "last_name", "email")
_EXAMPLES = (
    {
        "phone_number": "+14155550123",
        "first_name": "John",
        "last_name": "Doe",
        "email": "john.doe@example.com",
    },
    {
        "phone_number": "+442079460958",
        "first_name": "Jane",
        "last_name": "Smith",
        "email": "jane@example.com",
    },
)


def template_csv(agent: AgentSnapshot | None) -> str:
    """A ready-to-fill CSV; agent variables get the agent's default as the example value when it has one."""
    extra = [v for v in (agent.variables if agent else ()) if v not in STANDARD_COLUMNS]
    columns = [*STANDARD_COLUMNS, *extra]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for example in _EXAMPLES:
        defaults = agent.defaults if agent else {}
        writer.writerow([example.get(c) or defaults.get(c) or f"example {c}" for c in columns])
    return out.getvalue()
