"""A short soak: calls on one embedded server leave no file, thread or process behind."""

from __future__ import annotations

import pytest

from dualagent.soak import run_soak


@pytest.mark.slow
async def test_a_short_soak_completes_every_call_and_leaks_nothing(tmp_path) -> None:
    report = await run_soak(2, 12, text_parallel=4, output_dir=tmp_path)
    assert report.completed == 14
    assert report.leaked == {}, report.lines()
    assert len(list(tmp_path.iterdir())) == 15  # the warm-up call and every soak call recorded
    data = report.as_dict()
    assert data["before"]["open_fds"] > 0 and "rss_growth_mb" in data
