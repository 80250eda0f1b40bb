"""Agents' variables and the CSV template."""

from __future__ import annotations

import csv
import io

import pytest

from ingest.domain.agents import snapshot, template_variables, uncovered_variables
from ingest.domain.template import STANDARD_COLUMNS, template_csv

pytestmark = pytest.mark.unit


def test_variables_are_single_brace_placeholders_in_order() -> None:
    prompt = "Hello {first_name}, this is {company_name} about {region}. Bye {first_name}! {{not}} { spaced }"
    assert template_variables(prompt) == ("first_name", "company_name", "region", "not")


def test_uncovered_variables_ignore_columns_and_defaults() -> None:
    agent = snapshot(
        "agent_1", "A", "Hi {first_name} from {company} in {region}", defaults={"company": "Acme"}
    )
    assert uncovered_variables(agent, ("first_name", "email")) == ("region",)


def test_template_has_the_standard_columns_the_agent_variables_and_two_rows() -> None:
    agent = snapshot("agent_1", "A", "Hi {first_name} from {company}", defaults={"company": "Acme"})
    rows = list(csv.reader(io.StringIO(template_csv(agent))))
    assert rows[0] == [*STANDARD_COLUMNS, "company"]
    assert len(rows) == 3 and all(r[-1] == "Acme" for r in rows[1:])
    assert list(csv.reader(io.StringIO(template_csv(None))))[0] == list(STANDARD_COLUMNS)
