"""Helpers the tests import: where test data and models are, skipping with a clear message when absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FACELENS_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()
MODEL_DIR = Path(os.environ.get("FACELENS_MODEL_DIR", ROOT.parent / "shared" / "models")).resolve()


def need_data(*parts: str) -> Path:
    """Path under the test data folder, or skip the test with a message saying what is missing."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} not found (set FACELENS_TEST_DATA to the shared data folder)")
    return path


def need_model(*parts: str) -> Path:
    path = MODEL_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"model file {path} not found (set FACELENS_MODEL_DIR to the shared models folder)")
    return path


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 # a synthetic camera (test pattern) that needs no permission prompt, for the console's webcam
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@contextmanager
def chromium_page() -> Iterator:
    """A page in the system's headless Chromium (Debian ``chromium``) driven by Playwright; skips without them."""
    if not CHROMIUM.exists():
        pytest.skip("headless Chromium not installed (apt-get install -y chromium chromium-driver)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to drive Chromium")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
