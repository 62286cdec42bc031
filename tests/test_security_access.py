"""No sign-in, so no exposure by default: a non-loopback bind is refused on every page (and by
spai-dashboard and the Docker image) unless SPAI_ALLOW_UNAUTHENTICATED=1, which then puts a
banner on every page. Real AppTest runs of the app with the server address set in Streamlit's
config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from collections.abc import Callable

import pytest
from streamlit import config

from app_support import new_app, texts, use_store
from dashboard import launch
from dashboard.access import ENV_ALLOW, banner, bind_problem, is_loopback

REPO = Path(__file__).resolve().parent.parent
PAGES = ("home", "score", "inspect", "imagesets", "jobs", "compare", "models", "train")


@pytest.fixture
def bind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """Set Streamlit's server.address for the app under test (restored afterwards)."""
    use_store(monkeypatch, tmp_path / "spai.db")
    monkeypatch.delenv(ENV_ALLOW, raising=False)
    before = config.get_option("server.address")
    yield lambda address: config.set_option("server.address", address)
    config.set_option("server.address", before)


@pytest.mark.parametrize(
    "address, loopback",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.1.2.3", True),
        ("0.0.0.0", False),
        ("", False),
        (None, False),
        ("::", False),
        ("192.168.1.5", False),
        ("myhost", False),
    ],
)
def test_loopback_addresses(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback
    assert (bind_problem(address, {}) is None) is loopback
    assert bind_problem(address, {ENV_ALLOW: "1"}) is None
    assert bind_problem(address, {ENV_ALLOW: "yes"}) == bind_problem(address, {})  # only "1"
    assert (banner(address, {ENV_ALLOW: "1"}) is None) is loopback


def _page(name: str):
    at = new_app()
    at.switch_page(f"views/{name}.py")
    return at.run()


def test_a_non_loopback_bind_without_the_setting_serves_no_page(bind) -> None:
    bind("0.0.0.0")
    for name in PAGES:
        at = _page(name)
        assert not at.exception, name
        assert any("Refusing to serve on 0.0.0.0 without sign-in" in e for e in texts(at, "error"))
        assert not at.title and not at.button and not at.text_input, name  # nothing else shown


def test_with_the_setting_every_page_carries_the_banner(bind, monkeypatch) -> None:
    bind("0.0.0.0")
    monkeypatch.setenv(ENV_ALLOW, "1")
    for name in PAGES:
        at = _page(name)
        assert not at.exception, name
        assert any("No sign-in" in w and ENV_ALLOW in w for w in texts(at, "warning")), name
        assert at.title, name  # the page itself is served


def test_loopback_needs_no_setting_and_shows_no_banner(bind) -> None:
    bind("127.0.0.1")
    at = _page("models")
    assert not at.exception and at.title
    assert not any("No sign-in" in w for w in texts(at, "warning"))
    assert not any("Refusing" in e for e in texts(at, "error"))


def test_the_launcher_refuses_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMLIT_SERVER_ADDRESS", raising=False)
    assert launch.requested_address([]) == "127.0.0.1"  # from .streamlit/config.toml
    assert launch.requested_address(["--server.address=10.0.0.7"]) == "10.0.0.7"
    env = {k: v for k, v in os.environ.items() if k != ENV_ALLOW}
    res = subprocess.run(
        [sys.executable, "-m", "dashboard.launch", "--server.address", "0.0.0.0", "--server.port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1 and "Refusing to serve on 0.0.0.0" in res.stderr
    assert "Streamlit" not in res.stdout  # no server was started


def test_the_docker_image_follows_the_same_rule() -> None:
    lines = (REPO / "Dockerfile").read_text().splitlines()
    [cmd] = [ln for ln in lines if ln.startswith("CMD")]
    address = launch.requested_address(json.loads(cmd[len("CMD") :]))
    assert address == "0.0.0.0" and bind_problem(address, {}) is not None
    assert bind_problem(address, {ENV_ALLOW: "1"}) is None
    assert not any(ln.startswith("ENV") and ENV_ALLOW in ln for ln in lines)  # never by default
    assert any(f"-e {ENV_ALLOW}=1" in ln for ln in lines)  # documented for docker run
