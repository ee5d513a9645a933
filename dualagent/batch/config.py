"""What a batch runs: :class:`BatchConfig`, loaded from YAML (built-in by name, or a path).

A config names the caller types and/or scenarios, how many calls each (``repeat``), how many at
a time, the route, limits, base seed and audio format, and the success rate the batch must
reach (``min_success``: a threshold belongs with the run, as ``repeat`` and ``retries`` do).
Errors name the file, the field and the reason (:class:`ConfigError`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from dualagent.batch.plan import item_slug
from dualagent.call.hosted import secret_fields
from dualagent.call.options import CallDefaults
from dualagent.call.plan import resolve_persona
from dualagent.errors import InputError, describe_validation_error


class ConfigError(InputError):
    """A batch config that cannot be used: the message names the file, the field and the reason."""


class BatchConfig(CallDefaults):
    """What a batch runs. Loaded from YAML (``load_config``) or built in code.

    Besides its own fields (what to call, how often, how many at a time, the base seed) a config
    holds :class:`~dualagent.call.options.CallDefaults` for all its calls (route, duration,
    max_turns, line, backends, models, voices, audio format...); a field it leaves unset is the
    scenario's value, else the default, as for a single call.
    """

    name: str | None = Field(default=None, description="short name; used in the default batch id")
    description: str = ""
    caller_types: list[str] = Field(
        default_factory=list, description="persona names or .yaml paths"
    )
    scenarios: list[str] = Field(
        default_factory=list, description="scenario names (dualagent.scenarios)"
    )
    repeat: int = Field(default=1, ge=1, le=10_000, description="calls per caller type / scenario")
    parallel: int | None = Field(
        default=None, ge=1, le=1024, description="calls at a time (default: per route)"
    )
    processes: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="worker processes on this machine, each running one call at a time on its "
        "own embedded backend (default: one per core for fast text batches of 64 calls or "
        "more, else 1: every call in this process)",
    )
    seed: int = Field(default=0, ge=0, description="base seed; each call's seed derives from it")
    retries: int = Field(
        default=0,
        ge=0,
        le=10,
        description="run a call again, up to this many times, when it failed on a rate limit "
        "or a transient connect or server error",
    )
    min_success: float | None = Field(
        default=None,
        description="the share of judged calls that must succeed (0 to 1); below it the batch "
        "fails its gate (dualagent batch exits 1; BatchResult.gate)",
    )

    def call_defaults(self) -> dict[str, Any]:
        """The call options this config sets for every call (unset ones left to the scenario);
        headers are passed on in memory, never dumped (they are secrets)."""
        dumped = self.model_dump(include=set(CallDefaults.model_fields), exclude_none=True)
        return {**dumped, **secret_fields(self)}

    @field_validator("min_success")
    @classmethod
    def _a_share(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 <= value <= 1.0:  # NaN fails this too
            raise ValueError(
                "out of range; valid: a share of the judged calls from 0 to 1, e.g. 0.9"
            )
        return value

    @field_validator("caller_types", "scenarios", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("caller_types")
    @classmethod
    def _known_caller_types(cls, value: list[str]) -> list[str]:
        for name in value:
            resolve_persona(name)  # InputError (a ValueError) -> pydantic names the field
        _no_duplicates(value, "caller type")
        return value

    @field_validator("scenarios")
    @classmethod
    def _unique_scenarios(cls, value: list[str]) -> list[str]:
        _no_duplicates(value, "scenario")
        return value

    @model_validator(mode="after")
    def _something_to_run(self) -> BatchConfig:
        if not self.caller_types and not self.scenarios:
            raise ValueError("nothing to run: give caller_types and/or scenarios")
        return self


def _no_duplicates(values: list[str], what: str) -> None:
    seen = {item_slug(v) for v in values}
    if len(seen) != len(values):
        raise ValueError(f"each {what} may appear only once: {', '.join(values)}")


def _builtin_config_dir() -> Path:
    return Path(str(resources.files("dualagent") / "data" / "configs"))


def list_configs() -> list[str]:
    """Names of the built-in batch configs (``dualagent/data/configs/*.yaml``)."""
    return sorted(p.stem for p in _builtin_config_dir().glob("*.yaml"))


def load_config(name_or_path: str | Path) -> BatchConfig:
    """A built-in config by name (``"difficult_customers"``) or a YAML file by path.

    Raises :class:`ConfigError` naming the file, the field and the reason.
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        if str(name_or_path) not in list_configs():
            raise ConfigError(
                f"unknown config {str(name_or_path)!r}; valid choices: {', '.join(list_configs())}"
                " (or a path to a .yaml file)"
            )
        path = _builtin_config_dir() / f"{name_or_path}.yaml"
    elif not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config {path}: not valid YAML{where}: {reason}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping of fields, got {type(data).__name__}")
    data = _persona_paths_relative_to(data, path.parent)
    data.setdefault("name", path.stem)
    return config_from_dict(data, source=f"config {path}")


def _persona_paths_relative_to(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Persona and scenario .yaml paths in a config file are relative to that file."""
    data = dict(data)
    for key in ("caller_types", "scenarios"):
        names = data.get(key)
        if isinstance(names, list):
            data[key] = [
                str(base / n)
                if isinstance(n, str)
                and n.endswith((".yaml", ".yml"))
                and not Path(n).is_absolute()
                and (base / n).is_file()
                else n
                for n in names
            ]
    return data


def config_from_dict(data: dict[str, Any], source: str = "config") -> BatchConfig:
    """Validate a config mapping; errors name the source, each bad field and the reason."""
    try:
        return BatchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, model=BatchConfig)) from None


def as_config(config: BatchConfig | str | Path | dict[str, Any] | None) -> BatchConfig | None:
    """A config given as a model, a mapping, a built-in name or a YAML path (None stays None)."""
    if config is None or isinstance(config, BatchConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)
