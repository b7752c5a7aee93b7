"""The HTML report is self-contained and its plots render in a real browser (headless Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report_dir(devtest_scored, tmp_path_factory):
    from facelens.evaluate.calibration import fit_calibration
    from facelens.evaluate.verification import evaluate_scored, verification_report

    metrics = evaluate_scored(devtest_scored)
    s = devtest_scored.kept("exclude")
    cal = fit_calibration(s.scores, s.labels, "dlib_resnet_v1")
    out = tmp_path_factory.mktemp("report")
    verification_report(devtest_scored, metrics, out, "DevTest", "dlib_resnet_v1", cal)
    return out


def test_report_files_are_self_contained(report_dir):
    html = (report_dir / "report.html").read_text()
    assert {p.name for p in report_dir.glob("*.png")} == {"roc.png", "det.png", "scores.png", "tippett.png"}
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) == 4 and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert (report_dir / "results.json").is_file() and "failed to enrol" in html


def test_report_renders_in_headless_chromium(report_dir):
    if not CHROMIUM.exists():
        pytest.skip("headless Chromium not installed (apt-get install -y chromium chromium-driver)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to drive Chromium")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto((report_dir / "report.html").as_uri())
            page.wait_for_load_state("load")
            sizes = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight, e.alt])")
            title = page.title()
        finally:
            browser.close()
    assert title == "DevTest"
    assert len(sizes) == 4
    for complete, width, height, alt in sizes:
        assert complete and width > 200 and height > 200, alt
