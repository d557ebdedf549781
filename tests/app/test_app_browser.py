"""One walk through the app in headless Chromium: inspect a problem, rate a step by key, export.

Uses the system Chromium (/usr/bin/chromium); skipped when it is absent. Never downloads a browser.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from glore_db import Store

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 120_000


@pytest.fixture
def page(app_server):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.hosts = set()
            page.on("request", lambda request: page.hosts.add(urlparse(request.url).hostname))
            yield page
        finally:
            browser.close()


def test_inspect_annotate_and_export_in_the_browser(app_server, page, sample):
    page.goto(app_server["url"])
    # (gradio's sanitizer drops data-* attributes: the page is checked through classes)
    # Inspect: type a problem and a draft, threshold 0.99 so the first step is the first error.
    page.fill("#inspect-question textarea", "What is $x+y$ for x = 2? " + sample["question"])
    page.fill("#inspect-draft textarea", sample["draft"])
    page.fill("#inspect-gold textarea, #inspect-gold input", sample["gold"])
    page.fill("#inspect-threshold input[type=number]", "0.99")
    page.keyboard.press("Tab")
    page.click("#inspect-run")
    first_error = page.wait_for_selector("#inspect-draft-table tr.glore-first_error")
    assert "first error" in first_error.inner_text()
    for kind in ("global", "local", "rerank"):
        page.wait_for_selector(f"#inspect-{kind} .glore-card-{kind}", state="visible")
    page.wait_for_selector("#inspect-question-view .katex")  # $x+y$ rendered as maths

    # Annotate: the queue opens where "default" left off. Keys pressed without waiting for the server
    # rate consecutive steps (g g b: the cursor stays on the last step), move the cursor up and down
    # again (k j), mark the first error (f), give a verdict (1).
    page.get_by_role("tab", name="Annotate").click()
    page.wait_for_selector("#ann-table tr.glore-ann-step")
    case_id = int(page.input_value("#ann-case-id input"))
    page.click("#ann-progress")  # focus out of any text field so the shortcuts apply
    for key in "ggbkjf1":
        page.keyboard.press(key)
    page.wait_for_selector("#ann-table tr.glore-ann-step-2.glore-rating-bad")
    page.wait_for_function("document.querySelector('#ann-summary').innerText.includes('found_error')")
    with Store(app_server["db_url"]) as store:
        saved = store.get_annotation(case_id, "default")
    assert [r["rating"] for r in saved.step_ratings] == [1, 1, -1]
    assert (saved.first_error_step, saved.verdict) == (2, "found_error")
    assert "(b)" in page.inner_text("#ann-bad") and "(n)" in page.inner_text("#ann-next")
    page.keyboard.press("n")
    page.wait_for_function(f"document.querySelector('#ann-case-id input').value != '{case_id}'")

    # Export: TRL stepwise JSONL through the download button.
    page.get_by_role("tab", name="Export").click()
    page.click("#export-button")
    page.wait_for_selector("#export-download", state="visible")
    with page.expect_download() as download:
        page.click("#export-download")
    records = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert records and all(r["schema_version"] == 1 for r in records)
    assert any(r["labels"][:3] == [True, True, False] for r in records)  # the ratings given above

    assert page.hosts <= {"127.0.0.1"}, f"requests left this machine: {page.hosts}"
