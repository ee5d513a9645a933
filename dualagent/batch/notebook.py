"""A notebook run with papermill once a batch has finished (``--notebook``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_notebook(notebook: Path, batch_dir: Path) -> dict[str, Any]:
    """Execute ``notebook`` with papermill (``input_dir``/``output_dir`` = the batch folder).

    The executed copy is saved in the batch folder under the notebook's name. Returns what
    happened (paths, status, error) for the manifest; a failing notebook does not raise.
    """
    import papermill

    output = batch_dir / notebook.name
    info: dict[str, Any] = {
        "input": str(notebook),
        "output": str(output),
        "status": "completed",
        "error": None,
    }
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={"input_dir": str(batch_dir), "output_dir": str(batch_dir)},
            progress_bar=False,
            cwd=str(batch_dir),
        )
    except Exception as exc:
        if getattr(exc, "ename", None):  # papermill: a cell raised
            reason = f"{exc.ename}: {exc.evalue}"  # type: ignore[attr-defined]
        else:
            reason = f"{type(exc).__name__}: {exc}"
        info.update(status="error", error=reason.strip())
    return info
