"""Batches of calls: caller types or scenarios × repeat, run locally or on Dask, summarised."""

from dualagent.batch.runner import (
    DEFAULT_OUTPUT_DIR,
    BatchConfig,
    BatchResult,
    ConfigError,
    call_record,
    derive_seed,
    format_summary,
    list_configs,
    load_batch,
    load_config,
    overall,
    pass_hat_k,
    plan_calls,
    run,
    summarize,
)

__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "BatchConfig",
    "BatchResult",
    "ConfigError",
    "call_record",
    "derive_seed",
    "format_summary",
    "list_configs",
    "load_batch",
    "load_config",
    "overall",
    "pass_hat_k",
    "plan_calls",
    "run",
    "summarize",
]
