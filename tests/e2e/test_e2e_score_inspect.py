"""A new user in a real browser: open the app, score an upload, inspect an image, see models."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "spai-tiny"
PHOTO = FIXTURE / "images" / "07_photo_640x427.jpg"
UPLOAD_INPUT = '[data-testid="stFileUploaderDropzoneInput"]'
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def expected_score() -> float:
    from spai.detector import Detector

    det = Detector.load(FIXTURE / "spai_tiny_seed0.pth", cfg=FIXTURE / "spai_tiny.yaml", device="cpu")
    return det.score_one(PHOTO).score


def test_e2e_score_an_upload(page: Page, app_url: str, wait_for_app, screenshot, expected_score: float) -> None:
    page.goto(f"{app_url}/score")  # "/" is the Start page
    expect(page.get_by_role("heading", name="Score images")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("spai_tiny_seed0.pth")).to_be_visible()
    page.set_input_files(UPLOAD_INPUT, [str(PHOTO)])
    value = page.locator('[data-testid="stMetricValue"]').first
    expect(value).to_be_visible(timeout=TIMEOUT_MS)
    assert float(value.inner_text()) == pytest.approx(expected_score, abs=1e-4)
    expect(page.get_by_role("heading", name="likely")).to_be_visible()
    expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    page.get_by_role("button", name="Score under these conditions").click()
    expect(page.get_by_text("jpeg/q75:", exact=False).first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    screenshot(page, "score", height=2000)


def test_e2e_broken_upload_shows_a_message(page: Page, app_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page.goto(f"{app_url}/score")  # "/" is the Start page
    expect(page.get_by_role("heading", name="Score images")).to_be_visible(timeout=TIMEOUT_MS)
    page.set_input_files(UPLOAD_INPUT, [str(bad), str(PHOTO)])
    expect(page.get_by_text("notes.png: not an image")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator('[data-testid="stMetricValue"]').first).to_be_visible(timeout=TIMEOUT_MS)


def test_e2e_inspect_an_image(page: Page, app_url: str, wait_for_app, screenshot) -> None:
    page.goto(f"{app_url}/inspect")
    expect(page.get_by_role("heading", name="Inspect an image")).to_be_visible(timeout=TIMEOUT_MS)
    page.set_input_files(UPLOAD_INPUT, [str(PHOTO)])
    expect(page.get_by_role("heading", name="Spectrum")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("low-pass, r < 16")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("jpeg/q75: spectrum")).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    screenshot(page, "inspect", height=3000)


def test_e2e_models_page(page: Page, app_url: str, wait_for_app, screenshot) -> None:
    page.goto(f"{app_url}/score")  # "/" is the Start page
    expect(page.get_by_role("heading", name="Score images")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("link", name="Models").first.click()
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("spai_tiny_seed0 (active)")).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    screenshot(page, "models")
