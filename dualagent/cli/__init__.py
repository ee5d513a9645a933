"""The ``dualagent`` command: ``main`` parses and dispatches; one module per group of commands."""

from dualagent.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, main

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "UsageError", "main"]
