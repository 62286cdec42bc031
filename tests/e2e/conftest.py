"""Real-browser test infrastructure: a ``streamlit run`` server on a temporary store, Debian's
chromium driven by pytest-playwright, and a screenshot helper.

Fixtures:
    app_server  -- the running server (session): ``.url``, ``.database_url``, ``.data_dir``
    fresh_app_server -- a server of its own on an empty store (one test); ``start_app_server``
                        starts one with other settings (e.g. another model)
    app_url     -- its base URL, e.g. ``http://127.0.0.1:51234``
    page        -- pytest-playwright's page (chromium from /usr/bin, offline flags)
    screenshot  -- ``screenshot(page, "score")`` writes ``docs/screenshots/score.png``
    wait_for_app -- ``wait_for_app(page)``: blocks until Streamlit has finished running the page

The server uses the tiny real SPAI fixture (``SPAI_MODEL_WEIGHTS``) and starts its background
worker as in production; the worker processes are stopped at the end of the session. Without
chromium the tests are skipped locally and fail under ``CI``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "spai-tiny"
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 90  # health check; the first start imports torch on a shared 2-core machine
RUN_TIMEOUT_MS = 120_000  # one page run (model load, scoring) in the browser
VIEWPORT = {"width": 1400, "height": 1000}


@dataclass(frozen=True)
class AppServer:
    url: str
    database_url: str
    data_dir: Path
    process: subprocess.Popen


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit not healthy after {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def _stop_workers(database_url: str) -> None:
    """SIGTERM the worker processes that registered in this (temporary) store."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            pids = [r[0] for r in conn.execute(text("SELECT pid FROM workers WHERE stopped_at IS NULL"))]
    except Exception:  # no workers table: the app never started one
        pids = []
    finally:
        engine.dispose()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


@contextmanager
def start_app_server(tmp_base: Path, *, args: tuple[str, ...] = (), **env_overrides: str) -> Iterator[AppServer]:
    """``streamlit run dashboard/app.py`` on 127.0.0.1 and a free port, with a new temp store;
    folders under ``tmp_base`` (pytest's temp) may be registered; ``env_overrides`` replace
    environment variables (e.g. the model), ``args`` are more Streamlit options (e.g. a secrets
    file). Healthy when yielded, no page run yet (cold)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} not found but CI is set: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    tmp = Path(tempfile.mkdtemp(prefix="spai-e2e-"))
    database_url = f"sqlite:///{tmp / 'spai.db'}"
    port = _free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        SPAI_DATA_DIR=str(tmp / "data"),
        SPAI_MODEL_WEIGHTS=str(FIXTURE / "spai_tiny_seed0.pth"),
        SPAI_MODEL_CFG=str(FIXTURE / "spai_tiny.yaml"),
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",  # the tests' folders are registered from pytest's temp
        SPAI_DATA_ROOTS=os.pathsep.join([str(tmp_base), str(tmp / "data")]),
    )
    env.pop("SPAI_START_WORKER", None)
    env.update(env_overrides)
    log = tmp / "streamlit.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "dashboard/app.py",
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
                "--browser.gatherUsageStats",
                "false",
                *args,
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield AppServer(url, database_url, tmp / "data", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        _stop_workers(database_url)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The server the page tests share (one store for the session)."""
    with start_app_server(tmp_path_factory.getbasetemp()) as server:
        yield server


@pytest.fixture
def fresh_app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A server of its own on a fresh, empty store (a new user's first visit)."""
    with start_app_server(tmp_path_factory.getbasetemp()) as server:
        yield server


@pytest.fixture(scope="session")
def app_url(app_server: AppServer) -> str:
    return app_server.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Debian's chromium, headless, with the flags that keep it offline."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": VIEWPORT}


def _wait_for_app(page, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """Wait until no script run is in progress (the header's running/stop widget is gone)
    and every image on the page has loaded."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        "() => { const s = document.querySelector('[data-testid=\"stStatusWidget\"]');"
        " return !s || !/Running|Connecting|Stop/i.test(s.innerText); }",
        timeout=timeout_ms,
    )
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=timeout_ms)
    page.wait_for_timeout(500)  # let plotly finish drawing before a screenshot


@pytest.fixture
def wait_for_app() -> Callable[..., None]:
    return _wait_for_app


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """``screenshot(page, name, height=None)``: PNG of the page, scrolled to the top, at
    docs/screenshots/<name>.png; ``height`` enlarges the viewport first (Streamlit scrolls
    inside its own container, so a full-page shot needs a tall viewport)."""

    def take(page, name: str, height: int | None = None) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if height is not None:
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.evaluate("() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
        _wait_for_app(page)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
