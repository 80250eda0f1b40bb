from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain.prompt import placeholders, render_prompt

pytestmark = pytest.mark.unit


def test_fills_variables_from_the_row() -> None:
    assert render_prompt("Hi {first_name}!", {"first_name": "Ada"}) == "Hi Ada!"


def test_defaults_fill_gaps_and_blank_cells() -> None:
    text = render_prompt("{a}/{b}/{c}", {"a": "1", "b": ""}, defaults={"b": "B", "c": "C"})
    assert text == "1/B/C"


def test_missing_variable_empty_drops_the_placeholder() -> None:
    assert render_prompt("Hi {first_name}.", {}, missing="empty") == "Hi ."


def test_missing_variable_keep_leaves_the_placeholder() -> None:
    assert render_prompt("Hi {first_name}.", {}, missing="keep") == "Hi {first_name}."


@pytest.mark.parametrize(
    "literal",
    ["{}", "{ name }", "{1x}", '{"k": 1}', "{{name}", "{a-b}", "{ä}", "}{"],
)
def test_braces_that_are_not_identifiers_stay(literal: str) -> None:
    assert render_prompt(literal, {"name": "X", "k": "Y"}, missing="empty") == literal.replace("{name}", "X")


def test_a_value_is_never_rendered_again() -> None:
    # A contact's value that looks like a placeholder is text, not a template.
    assert render_prompt("{a}", {"a": "{b}", "b": "no"}) == "{b}"


def test_placeholders_in_first_use_order() -> None:
    assert placeholders("{b} {a} {b} {1} {_c}") == ["b", "a", "_c"]


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
plain = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=30)


@given(plain)
def test_text_without_braces_is_unchanged(text: str) -> None:
    assert render_prompt(text, {"x": "y"}) == text


@given(st.lists(st.tuples(plain, names), max_size=6), st.dictionaries(names, plain, max_size=6))
def test_keep_mode_only_changes_known_placeholders(parts: list[tuple[str, str]], row: dict[str, str]) -> None:
    template = "".join(f"{text}{{{name}}}" for text, name in parts)
    expected = "".join(f"{text}{row[name] if row.get(name) else '{' + name + '}'}" for text, name in parts)
    assert render_prompt(template, row, missing="keep") == expected
