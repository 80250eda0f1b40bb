"""Agents: a prompt template with `{variable}` placeholders (single braces, as in the reference docs)."""

from __future__ import annotations

import re
from typing import Literal

from shared.events import AgentSnapshot

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def template_variables(prompt: str) -> tuple[str, ...]:
    """The distinct placeholders of a prompt, in order of first use."""
    return tuple(dict.fromkeys(_PLACEHOLDER.findall(prompt)))


def snapshot(
    agent_id: str,
    name: str,
    prompt: str,
    *,
    caller_id: str | None = None,
    defaults: dict[str, str] | None = None,
    missing_variable: Literal["empty", "keep"] = "empty",
    max_call_seconds: int = 600,
) -> AgentSnapshot:
    """The agent as a batch carries it; its variables are extracted here, once."""
    return AgentSnapshot(
        agent_id=agent_id,
        name=name,
        prompt_template=prompt,
        variables=template_variables(prompt),
        caller_id=caller_id,
        defaults=defaults or {},
        missing_variable=missing_variable,
        max_call_seconds=max_call_seconds,
    )


def uncovered_variables(agent: AgentSnapshot, columns: tuple[str, ...]) -> tuple[str, ...]:
    """Agent variables that no CSV column and no agent default provides."""
    provided = set(columns) | set(agent.defaults)
    return tuple(v for v in agent.variables if v not in provided)
