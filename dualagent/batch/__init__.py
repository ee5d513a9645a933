"""Batches of calls: caller types or scenarios × repeat, run locally or on Dask, summarised.

- :mod:`~dualagent.batch.config`: what a batch runs (:class:`BatchConfig`, YAML configs)
- :mod:`~dualagent.batch.plan`: the calls, their ids and seeds
- :mod:`~dualagent.batch.manifest`: the batch folder (``batch.json``, calls, summary, pass^k)
- :mod:`~dualagent.batch.runner`: :func:`run`, the calls N at a time, cancellation, progress
- :mod:`~dualagent.batch.dask`: the calls as Dask tasks
- :mod:`~dualagent.batch.notebook`: a papermill notebook afterwards
- :mod:`~dualagent.batch.ci`: the success-rate gate (``min_success``) and the JUnit XML report
"""

from dualagent.batch.ci import Gate, junit_xml, write_junit
from dualagent.batch.config import (
    BatchConfig,
    ConfigError,
    config_from_dict,
    list_configs,
    load_config,
)
from dualagent.batch.manifest import (
    DEFAULT_OUTPUT_DIR,
    BatchResult,
    calls_frame,
    format_summary,
    load_batch,
    overall,
    pass_hat_k,
    summarize,
    write_results,
)
from dualagent.batch.plan import CallSpec, default_parallel, derive_seed, plan_calls
from dualagent.batch.runner import run

__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "BatchConfig",
    "BatchResult",
    "CallSpec",
    "ConfigError",
    "Gate",
    "calls_frame",
    "config_from_dict",
    "default_parallel",
    "derive_seed",
    "format_summary",
    "junit_xml",
    "list_configs",
    "load_batch",
    "load_config",
    "overall",
    "pass_hat_k",
    "plan_calls",
    "run",
    "summarize",
    "write_junit",
    "write_results",
]
