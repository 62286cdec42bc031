"""A new user in a real browser: import the study and read the AUC table; register a small image
set and run an inference job on it to the end; the Train page (screenshot; the Start, Image
sets, Jobs and Compare screenshots come from test_e2e_journey.py)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

TIMEOUT_MS = 180_000
JOB_DONE_TIMEOUT_S = 240  # the worker imports torch and loads the model on a shared 2-core box


def test_e2e_import_study_and_read_auc(page: Page, app_url: str, wait_for_app) -> None:
    page.goto(f"{app_url}/compare")
    expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    button = page.get_by_role("button", name="Import the robustness study")
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="mean AUC, original").first
    expect(button.or_(metric).first).to_be_visible(timeout=TIMEOUT_MS)
    if button.is_visible():  # an empty store: one click imports the study through the worker
        button.click()
    expect(metric).to_be_visible(timeout=TIMEOUT_MS)
    value = metric.locator('[data-testid="stMetricValue"]').inner_text()
    assert float(value) == pytest.approx(0.919, abs=5e-4)
    expect(page.get_by_text("Mean over coco, fodb, imagenet, openimages")).to_be_visible()
    wait_for_app(page)


def _tiny_images(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)).save(folder / f"tiny{i}.png")
    (folder / "broken.png").write_bytes(b"not an image at all")


def _pick(page: Page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).first
    expect(box).to_be_visible(timeout=TIMEOUT_MS)
    box.click()
    page.get_by_role("option", name=option).click()
    page.keyboard.press("Escape")


def test_e2e_register_set_and_run_inference(page: Page, app_url: str, wait_for_app, tmp_path: Path) -> None:
    _tiny_images(tmp_path / "tiny")
    page.goto(f"{app_url}/imagesets")
    expect(page.get_by_role("heading", name="Image sets", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    # Each step commits its widget and waits for the rerun it starts: a click that lands while a
    # rerun redraws the form can be lost (CI under load lost the label's click so).
    folder = page.get_by_label("Folder (on the server)")
    folder.fill(str(tmp_path / "tiny"))
    folder.press("Enter")
    fake = page.get_by_role("radio", name="fake")
    expect(fake).to_be_visible(timeout=TIMEOUT_MS)  # no real/ fake/ subfolders: one label for all
    wait_for_app(page)
    name = page.get_by_label("Set name").first
    name.fill("e2e-tiny")
    name.press("Enter")
    wait_for_app(page)
    for _ in range(3):
        page.get_by_text("fake", exact=True).first.click()
        wait_for_app(page)
        if fake.is_checked():
            break
    expect(fake).to_be_checked()
    page.get_by_role("button", name="Register folder").click()
    expect(page.get_by_text(re.compile(r"Registered e2e-tiny: 4 image\(s\) added"))).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)

    page.goto(f"{app_url}/jobs")
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    register = page.get_by_role("button", name="Register the active model")
    sets = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Image sets").first
    expect(register.or_(sets).first).to_be_visible(timeout=TIMEOUT_MS)
    if register.is_visible():  # no runnable model yet: register the app's active model
        register.click()
    _pick(page, "Image sets", "e2e-tiny")
    wait_for_app(page)  # the pick's rerun relabels the button
    page.get_by_role("button", name="Queue 1 job(s)").click()
    expect(page.get_by_text(re.compile(r"Queued job\(s\) \d+\."))).to_be_visible(timeout=TIMEOUT_MS)
    job_id = re.search(r"Queued job\(s\) (\d+)\.", page.get_by_text(re.compile(r"Queued job\(s\)")).inner_text()).group(
        1
    )
    done = re.compile(rf"#{job_id} Score e2e-tiny .*: done")
    deadline = time.monotonic() + JOB_DONE_TIMEOUT_S
    while time.monotonic() < deadline:  # the history is not a fragment: reload to see it
        page.goto(f"{app_url}/jobs")
        wait_for_app(page)
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Job details").first.click()
        option = page.get_by_role("option", name=done)
        if option.count():
            option.click()
            break
        page.keyboard.press("Escape")
        time.sleep(3)
    else:
        pytest.fail(f"job {job_id} did not finish within {JOB_DONE_TIMEOUT_S}s")
    expect(page.get_by_text(re.compile(r"run \d+: 4 images to score"))).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)


def test_e2e_train_page(page: Page, app_url: str, wait_for_app, screenshot) -> None:
    page.goto(f"{app_url}/train")
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Queue training job").click()
    expect(page.get_by_text("choose at least one real and one fake image set")).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    screenshot(page, "train")
