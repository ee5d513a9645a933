"""Checking a tool's arguments against its JSON schema during a call.

``fastjsonschema`` compiles each schema once to a Python function (microseconds a check, a
few milliseconds to import). ``jsonschema``, which checks a spec's schemas themselves when
the spec is loaded (:func:`dualagent.agent_spec.check_json_schema`), took a second or more
to import (its format checkers compile dozens of grammars) and ~20 MB in every process that
checked one argument. Formats are not checked, as ``jsonschema`` does not by default, and
defaults are never written into the arguments. Tool schemas use the keywords common to
drafts 7 and 2020-12 (types, properties, required, enum, bounds, patterns, items).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema
import orjson

_COMPILED: dict[bytes, Callable[[Any], Any]] = {}
_COMPILED_MAX = 512


def first_problem(schema: Mapping[str, Any], value: Any) -> str | None:
    """What is wrong with ``value`` for ``schema`` (``"day: 3 is not of type 'string'"``), or
    None when it is valid."""
    try:
        _validator(schema)(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        where = ".".join(str(part) for part in exc.path[1:])  # path[0] is "data"
        return f"{where + ': ' if where else ''}{_message(exc)}"
    return None


def is_valid(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value`` satisfies ``schema``."""
    return first_problem(schema, value) is None


def _validator(schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    validator = _COMPILED.get(key)
    if validator is None:
        # $schema names a draft fastjsonschema may not know; the keywords mean the same.
        definition = {k: v for k, v in schema.items() if k != "$schema"}
        validator = fastjsonschema.compile(definition, use_default=False, use_formats=False)
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[key] = validator
    return validator


def _message(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """The error in the words jsonschema used (what earlier recordings and agents saw)."""
    rule, expected, value = exc.rule, exc.rule_definition, exc.value
    if rule == "type":
        return f"{value!r} is not of type {expected!r}"
    if rule == "enum":
        return f"{value!r} is not one of {expected!r}"
    if rule == "required" and isinstance(value, Mapping):
        missing = [name for name in expected or [] if name not in value]
        if missing:
            return f"{missing[0]!r} is a required property"
    name = exc.name or "data"
    return exc.message.removeprefix(f"{name} ").strip()
