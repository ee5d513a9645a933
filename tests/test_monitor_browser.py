"""The live monitor page in a real browser: Debian's Chromium, driven by Playwright.

Playwright's own browser download is not used (``executable_path`` points at the system
Chromium, which ``.ci/run`` installs with apt-get).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dualagent.service.settings import ServiceSettings
from tests.service_helpers import running_service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
async_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)

TIMEOUT_MS = 240_000  # generous: waits end on what is shown, never on a stopwatch


async def test_the_monitor_shows_a_call_as_it_happens_and_plays_its_recording(tmp_path):
    settings = ServiceSettings.build(output_dir=tmp_path / "calls", batch_dir=tmp_path / "batches")
    async with (
        running_service(settings) as service,
        async_api.async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            await page.goto(service.http + "/")
            await page.wait_for_selector("#caller-type option[value=elderly]", state="attached")
            await async_api.expect(page.locator("#health")).to_contain_text("ok")

            # Start a call with real speech, short enough to finish quickly.
            await page.select_option("#caller-type", "elderly")
            await page.select_option("#route", "audio")
            await page.fill("#duration", "60")
            await page.fill("#seed", "5")
            await page.click("#start-call")

            title = page.locator("#call-title")
            await async_api.expect(title).to_contain_text("elderly-", timeout=TIMEOUT_MS)
            conversation_id = (await title.text_content()).strip()
            await async_api.expect(page.locator("#call-persona")).to_contain_text("audio route")

            # The transcript grows while the call runs: one utterance, then more.
            utterances = page.locator("#transcript li.caller, #transcript li.cs")
            await async_api.expect(utterances.first).to_be_visible(timeout=TIMEOUT_MS)
            await async_api.expect(utterances.nth(2)).to_be_visible(timeout=TIMEOUT_MS)
            await async_api.expect(page.locator("#active-calls li").first).to_contain_text(
                "elderly", timeout=TIMEOUT_MS
            )

            # The outcome appears, with the recording's player.
            outcome = page.locator("#outcome")
            await async_api.expect(outcome).to_be_visible(timeout=TIMEOUT_MS)
            await async_api.expect(outcome).to_contain_text("outcome:")
            await async_api.expect(page.locator("#call-status")).not_to_have_text("running")
            await async_api.expect(page.locator("#timeline .seg").first).to_be_attached()
            player = page.locator("#recording")
            await async_api.expect(player).to_be_attached()
            assert (await player.get_attribute("src")).endswith(
                f"/conversations/{conversation_id}/audio/stereo"
            )

            # Play the recording: it loads, has the call's length and its time advances.
            await page.wait_for_function(
                "document.getElementById('recording').readyState >= 1", timeout=TIMEOUT_MS
            )
            duration_s = await player.evaluate("audio => audio.duration")
            metadata = json.loads(
                (settings.output_dir / conversation_id / "call_metadata.json").read_text()
            )
            assert duration_s == pytest.approx(metadata["audio"]["duration_s"], abs=0.05)
            await player.evaluate("audio => audio.play()")
            await page.wait_for_function(
                "document.getElementById('recording').currentTime > 0.2", timeout=TIMEOUT_MS
            )
            await player.evaluate("audio => audio.pause()")

            # The finished call is listed with its outcome.
            finished = page.locator(f"#finished-calls li[data-id='{conversation_id}']")
            await async_api.expect(finished).to_be_visible(timeout=TIMEOUT_MS)
            assert not problems, problems
            await page.screenshot(path=str(tmp_path / "monitor.png"), full_page=True)
        finally:
            await browser.close()
    assert (tmp_path / "monitor.png").stat().st_size > 10_000
