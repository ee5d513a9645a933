"""Tool arguments checked against their schema during a call (dualagent.schema_check)."""

from __future__ import annotations

import subprocess
import sys

from dualagent.schema_check import first_problem, is_valid

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "day": {"type": "string", "enum": ["monday", "tuesday"]},
        "count": {"type": "integer", "minimum": 1, "default": 1},
        "when": {"type": "string", "format": "date"},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["day"],
    "additionalProperties": False,
}


def test_problems_are_named_with_the_argument_and_the_rule() -> None:
    assert first_problem(SCHEMA, {"day": "monday"}) is None
    assert first_problem(SCHEMA, {"day": 3}) == "day: 3 is not of type 'string'"
    assert first_problem(SCHEMA, {"day": "sunday"}) == (
        "day: 'sunday' is not one of ['monday', 'tuesday']"
    )
    assert first_problem(SCHEMA, {}) == "'day' is a required property"
    assert "count" in (first_problem(SCHEMA, {"day": "monday", "count": 0}) or "")
    assert "items" in (first_problem(SCHEMA, {"day": "monday", "items": [1]}) or "")
    assert first_problem(SCHEMA, {"day": "monday", "extra": 1}) is not None
    assert is_valid({"type": "string", "pattern": "^[0-9]{4}$"}, "4417")
    assert not is_valid({"type": "string", "pattern": "^[0-9]{4}$"}, "44")


def test_arguments_are_not_changed_and_formats_are_not_checked() -> None:
    arguments = {"day": "monday", "when": "next week"}
    assert first_problem(SCHEMA, arguments) is None  # as jsonschema: formats unchecked
    assert arguments == {"day": "monday", "when": "next week"}  # no default filled in


def test_a_call_does_not_import_jsonschema() -> None:
    # A text call with tools (the caller's end_call, the bank's card tools) checks arguments
    # without jsonschema: its import cost a second and ~20 MB in every calling process.
    code = (
        "import sys, tempfile, dualagent\n"
        "r = dualagent.run('elderly', route='text', output_dir=tempfile.mkdtemp(), seed=7)\n"
        "assert r.metadata['end_reason'] == 'caller_hung_up', r.metadata\n"
        "assert ('caller', 'end_call') in [(c['agent'], c['name']) for c in r.function_calls]\n"
        "print('jsonschema' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]
