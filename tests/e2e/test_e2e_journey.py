"""Issue 12's acceptance: a new user's own data, end to end, in Debian chromium on a fresh store.

Register a folder with real/ and fake/ subfolders (24 photo crops each), score both sets on the
original images and under the meme condition, import the study, then open Compare from a
finished job's link with both the own model and the study's SPAI model and every condition
selected: no exception, no ``nan``/``None``, the own model's mean has a number. Screenshots of
the Start, Image sets, Jobs and Compare pages for the README come from this run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[2]
PHOTO = REPO / "tests" / "fixtures" / "spai-tiny" / "images" / "07_photo_640x427.jpg"
PER_LABEL = 24
CROP = 112  # px; small crops keep 4 scoring jobs short on a 2-core machine
TIMEOUT_MS = 180_000
JOBS_TIMEOUT_MS = 900_000  # derive + score 96 images and import the study, shared 2-core box
OWN_MODEL = "spai_tiny_seed0"
STUDY_MODEL = "SPAI (official weights, study)"
OPEN_ATTEMPTS = 5
MISSING = re.compile(r"\b(nan|None|NaN)\b")


def _photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_image

    return [
        np.asarray(Image.open(PHOTO).convert("RGB")),
        load_sample_image("china.jpg"),
        load_sample_image("flower.jpg"),
    ]


def make_folder(root: Path) -> Path:
    """<root>/mine/real: crops of real photos; <root>/mine/fake: the same kind of crops
    smoothed and re-sharpened (a stand-in for generated images; the model need not tell)."""
    rng = np.random.default_rng(12)
    photos = _photos()
    for label in ("real", "fake"):
        (root / "mine" / label).mkdir(parents=True)
    for i in range(2 * PER_LABEL):
        photo = photos[i % len(photos)]
        y = int(rng.integers(0, photo.shape[0] - CROP))
        x = int(rng.integers(0, photo.shape[1] - CROP))
        crop = Image.fromarray(photo[y : y + CROP, x : x + CROP])
        if i < PER_LABEL:
            crop.save(root / "mine" / "real" / f"r{i:02d}.png")
        else:
            fake = crop.filter(ImageFilter.GaussianBlur(1.5)).filter(ImageFilter.SHARPEN)
            fake.save(root / "mine" / "fake" / f"f{i:02d}.png")
    return root / "mine"


def _choose(page: Page, wait, widget: str, label: str, option: str | re.Pattern, search: bool) -> None:
    """Open a select widget and click an option. A rerun that starts just after the click
    redraws the widget and closes its list, so the list is opened again until the click lands
    (a bounded retry)."""
    box = page.locator(f'[data-testid="{widget}"]').filter(has_text=label).first
    for _ in range(OPEN_ATTEMPTS):
        wait(page)
        expect(box).to_be_visible(timeout=TIMEOUT_MS)
        box.click()
        if search:
            page.keyboard.type(option)  # a long, virtualised list: filter it first
        try:
            page.get_by_role("option", name=option, exact=search).first.click(timeout=5_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        pytest.fail(f"could not choose {option!r} in {label!r}")
    if search:
        page.keyboard.press("Escape")


def _pick(page: Page, wait, label: str, option: str) -> None:
    _choose(page, wait, "stMultiSelect", label, option, search=True)


def _select(page: Page, wait, label: str, option: str | re.Pattern) -> None:
    _choose(page, wait, "stSelectbox", label, option, search=False)


def _main_text(page: Page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_e2e_own_data_journey(page: Page, fresh_app_server, wait_for_app, screenshot, tmp_path: Path) -> None:
    url = fresh_app_server.url
    folder = make_folder(tmp_path)

    # Start: the first-run guide, nothing done yet
    page.goto(url)
    expect(page.get_by_text("Getting started")).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    screenshot(page, "start")

    # Image sets: the folder's subfolders give the labels; two sets in one step
    page.get_by_role("button", name="Register your sets").click()
    expect(page.get_by_role("heading", name="Image sets", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_label("Folder (on the server)").fill(str(folder))
    page.get_by_label("Folder (on the server)").press("Enter")
    expect(page.get_by_text("Labels from subfolders")).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)  # a click while the folder's rerun redraws the form can be lost
    page.get_by_role("button", name="Register folder").click()
    expect(page.get_by_text(f"Registered mine-real, mine-fake: {2 * PER_LABEL} image(s) added")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    wait_for_app(page)

    # one click per set: score it on the original images and under the meme condition
    _pick(page, wait_for_app, "Under these conditions too", "meme")
    for name in ("mine-real", "mine-fake"):
        _select(page, wait_for_app, "Set", re.compile(rf"^{name}$"))
        wait_for_app(page)
        page.get_by_role("button", name=f"Score {name} with {OWN_MODEL} on 2 condition(s)").click()
        expect(page.get_by_text(re.compile(r"Queued job\(s\) \d+, \d+"))).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    screenshot(page, "imagesets")

    # the study, from the guide on the Start page
    page.goto(url)
    page.get_by_role("button", name="Import the study").click()
    expect(page.get_by_text(re.compile(r"Queued import job \d+"))).to_be_visible(timeout=TIMEOUT_MS)

    # Jobs: the list refreshes by itself until everything is done (no reload)
    page.goto(f"{url}/jobs")
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Active jobs (0)")).to_be_visible(timeout=JOBS_TIMEOUT_MS)
    expect(page.get_by_text("Nothing queued or running.")).to_be_visible()
    wait_for_app(page)
    _select(page, wait_for_app, "Job details", f"Score mine-fake with {OWN_MODEL} on the original images: done")
    link = page.get_by_role("link", name=re.compile(r"Open run \d+ in Compare"))
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    assert not MISSING.search(_main_text(page))
    wait_for_app(page)
    screenshot(page, "jobs")
    href = link.get_attribute("href")
    assert re.fullmatch(r"compare\?run=\d+", href), href

    # Compare, opened from the job's link: the run's model, then the study's model too
    page.goto(f"{url}/{href}")
    expect(page.get_by_text(f"{OWN_MODEL} on the fake set mine-fake under original")).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)
    _pick(page, wait_for_app, "Models", STUDY_MODEL)
    wait_for_app(page)
    conditions = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Conditions")
    for cond in ("original", "meme"):
        expect(conditions.get_by_text(cond, exact=True)).to_be_visible()
    own_mean = (
        page.locator('[data-testid="stMetric"]')
        .filter(has_text=f"{OWN_MODEL}: mean AUC, original")
        .locator('[data-testid="stMetricValue"]')
    )
    expect(own_mean).to_be_visible(timeout=TIMEOUT_MS)
    assert 0.0 <= float(own_mean.inner_text()) <= 1.0
    study_mean = (
        page.locator('[data-testid="stMetric"]')
        .filter(has_text=f"{STUDY_MODEL}: mean AUC, original")
        .locator('[data-testid="stMetricValue"]')
    )
    assert float(study_mean.inner_text()) == pytest.approx(0.919, abs=5e-4)
    assert page.locator('[data-testid="stException"]').count() == 0
    text = _main_text(page)
    assert not MISSING.search(text), MISSING.search(text)
    screenshot(page, "compare")
