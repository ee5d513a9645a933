"""Errors raised at the edges, and the one way a pydantic validation error becomes a message.

A message names the field, the bad value and the reason or the valid choices, so whoever reads
it (a user at a prompt, a model calling a tool) can fix the input without opening the code.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Collection, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["InputError", "describe_validation_error"]


class InputError(ValueError):
    """A bad argument from the user: the message names the value and the valid choices."""


def describe_validation_error(
    exc: ValidationError,
    source: str | None = None,
    *,
    model: type[BaseModel] | None = None,
    union_tags: Collection[str] = (),
) -> str:
    """One ``<field path>: <reason>`` per problem, joined with ``'; '`` (prefixed ``<source>: ``).

    The reason is pydantic's, with the bad value when the reason does not show it; an unknown
    field lists the valid fields when ``model`` (the validated model) is given; an unknown
    discriminator lists the valid ones. ``union_tags`` are the tags of discriminated unions
    (e.g. check kinds): pydantic puts them into error paths, where they only add noise.
    """
    problems = [_describe_one(error, model, union_tags) for error in exc.errors()]
    text = "; ".join(dict.fromkeys(problems))
    return f"{source}: {text}" if source else text


def _describe_one(error: Any, model: type[BaseModel] | None, union_tags: Collection[str]) -> str:
    kind = error["type"]
    union_error = kind in ("union_tag_invalid", "union_tag_not_found")
    loc = _drop_union_tags(error["loc"], union_tags, keep_last=union_error)
    path = ".".join(str(part) for part in loc) or "(root)"
    ctx = error.get("ctx") or {}
    discriminator = str(ctx.get("discriminator", "kind")).strip("'")
    if kind == "missing":
        return f"{path}: missing (required)"
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        return f"{path}: unknown field" + (f" (valid fields: {', '.join(valid)})" if valid else "")
    if kind == "union_tag_invalid":
        choices = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"{path}: unknown {discriminator} {ctx.get('tag')!r}; valid choices: {choices}"
    if kind == "union_tag_not_found":
        choices = f"; valid choices: {', '.join(union_tags)}" if union_tags else ""
        return f"{path}: missing {discriminator}{choices}"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, dict | list) or (isinstance(value, str) and repr(value) in message):
        return f"{path}: {message}"  # a container, or our validator already quoted the value
    return f"{path}: {message} (got {_shown(value)})"


def _shown(value: Any, limit: int = 60) -> str:
    text = json.dumps(value) if isinstance(value, bool) or value is None else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _drop_union_tags(
    loc: Sequence[int | str], union_tags: Collection[str], keep_last: bool
) -> list[int | str]:
    """``checks.x.said.phrases`` -> ``checks.x.phrases``.

    Pydantic puts a tag right after the place that holds a union member, so of a run of
    tag-like parts the last one is the tag (the others are keys that happen to look like one).
    A union error's location ends at the union itself, so its trailing run has no tag.
    """
    parts = list(loc)
    out: list[int | str] = []
    for i, part in enumerate(parts):
        is_tag = isinstance(part, str) and part in union_tags
        next_is_tag = i + 1 < len(parts) and str(parts[i + 1]) in union_tags
        last = i + 1 == len(parts)
        if is_tag and not next_is_tag and not (last and keep_last):
            continue
        out.append(part)
    return out


def _fields_at(model: type[BaseModel] | None, loc: Sequence[int | str]) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model`` (none when unknown)."""
    current = model
    for part in loc:
        if current is None:
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        members = [m for m in _members(field.annotation) if _is_model(m)]
        current = members[0] if len(members) == 1 else None
    return list(current.model_fields) if current is not None else []


def _members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
