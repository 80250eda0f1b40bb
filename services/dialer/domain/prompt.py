"""Rendering an agent's prompt with one contact's variables.

Placeholders are single-brace identifiers: `{first_name}`. Anything else in braces (`{}`, `{ a }`, `{1x}`,
JSON such as `{"k": 1}`) is literal text and left alone, so prompts may contain braces freely.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

MissingVariable = Literal["empty", "keep"]

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""`{identifier}`; the same rule ingest uses to list a template's variables."""


def placeholders(template: str) -> list[str]:
    """The variable names a template uses, in first-use order, without repeats."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def render_prompt(
    template: str,
    variables: Mapping[str, str],
    *,
    defaults: Mapping[str, str] | None = None,
    missing: MissingVariable = "empty",
) -> str:
    """Fill each `{name}` from the contact's variables, then the agent's defaults.

    A variable that is absent or blank in the row falls back to the agent's default; with neither, `missing`
    decides: "empty" drops the placeholder, "keep" leaves `{name}` in the text (ingest warned at validation).
    """
    fallback = defaults or {}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = variables.get(name)
        if value is None or value == "":
            value = fallback.get(name)
        if value is None or value == "":
            return "" if missing == "empty" else match.group(0)
        return value

    return PLACEHOLDER.sub(fill, template)
