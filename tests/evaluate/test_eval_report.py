"""The HTML report is self-contained and its plots render in a real browser (headless Chromium)."""

from __future__ import annotations

import re

import pytest
from helpers import chromium_page


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
    with chromium_page() as page:
        page.goto((report_dir / "report.html").as_uri())
        page.wait_for_load_state("load")
        sizes = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight, e.alt])")
        title = page.title()
    assert title == "DevTest"
    assert len(sizes) == 4
    for complete, width, height, alt in sizes:
        assert complete and width > 200 and height > 200, alt
