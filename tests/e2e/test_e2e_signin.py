"""Sign-in end to end (issue 15.5) in Debian chromium against a real OpenID Connect provider
(``oidc-provider-mock``, started here on localhost): the dashboard has ``[auth]`` in its secrets
file and ``SPAI_ADMINS=root@lab.org``; users alice and bob, administrator root.

Alice signs in and queues a job (the study import; no worker runs, so it stays queued), signs
out (the provider's end-session page, then the sign-in screen again). Bob cannot cancel her job
nor change the default model: the page shows the refusal and the store is unchanged. Root can
do both.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text

from conftest import AppServer, start_app_server

TIMEOUT_MS = 180_000
USERS = {"alice": "alice@lab.org", "bob": "bob@lab.org", "root": "root@lab.org"}
ADMIN = "root"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The OpenID Connect provider with the three users; yields its base URL."""
    from oidc_provider_mock import User, run_server_in_thread

    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on localhost
    users = [
        User(sub=sub, claims={"email": email, "email_verified": True, "name": sub.title()})
        for sub, email in USERS.items()
    ]
    with run_server_in_thread(user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def signin_server(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The dashboard with sign-in through ``provider`` and no background worker."""
    secrets_file = tmp_path_factory.mktemp("secrets") / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "spai-dashboard"\n'
        'client_secret = "e2e-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    with start_app_server(
        tmp_path_factory.getbasetemp(),
        args=("--secrets.files", str(secrets_file)),
        SPAI_ADMINS=USERS[ADMIN],
        SPAI_START_WORKER="0",
        AUTHLIB_INSECURE_TRANSPORT="1",
    ) as server:
        yield server


def _store(server: AppServer, sql: str):
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).all()
    finally:
        engine.dispose()


def _sign_in(page: Page, url: str, user: str, wait_for_app) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in").click(timeout=TIMEOUT_MS)
    page.get_by_role("button", name=user, exact=True).click(timeout=TIMEOUT_MS)  # provider
    role = "administrator" if user == ADMIN else "user"
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {USERS[user]} ({role})", timeout=TIMEOUT_MS)
    wait_for_app(page)


def _sign_out(page: Page, wait_for_app) -> None:
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    end = page.get_by_role("button", name="End session")  # the provider's end-session page
    sign_in = page.get_by_role("button", name="Sign in")
    expect(end.or_(sign_in).first).to_be_visible(timeout=TIMEOUT_MS)
    if end.is_visible():
        end.click()
    expect(sign_in).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)  # nothing but the sign-in screen
    wait_for_app(page)


def _open(page: Page, url: str, title: str, wait_for_app) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    wait_for_app(page)


def test_e2e_users_and_an_administrator(page: Page, signin_server: AppServer, wait_for_app) -> None:
    url = signin_server.url
    page.goto(f"{url}/jobs")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Jobs")).to_have_count(0)  # no page before sign-in

    _sign_in(page, url, "alice", wait_for_app)
    _open(page, f"{url}/compare", "Compare", wait_for_app)
    page.get_by_role("button", name="Import the robustness study").click()
    expect(page.get_by_text("Import job 1: queued")).to_be_visible(timeout=TIMEOUT_MS)
    assert _store(signin_server, "SELECT id, status, owner FROM jobs") == [(1, "queued", "alice@lab.org")]
    _sign_out(page, wait_for_app)

    _sign_in(page, url, "bob", wait_for_app)
    _open(page, f"{url}/jobs", "Jobs", wait_for_app)
    page.get_by_role("button", name="Cancel").click()
    expect(
        page.get_by_text(
            "Only its owner (alice@lab.org) or an administrator may cancel job 1; you are signed in as bob@lab.org."
        )
    ).to_be_visible(timeout=TIMEOUT_MS)
    assert _store(signin_server, "SELECT status, cancel_requested FROM jobs") == [("queued", False)]
    _open(page, f"{url}/models", "Models", wait_for_app)
    page.get_by_role("button", name="Use as default").click()
    expect(
        page.get_by_text("Only an administrator may change the default model; you are signed in as bob@lab.org.")
    ).to_be_visible(timeout=TIMEOUT_MS)
    assert _store(signin_server, "SELECT key FROM settings") == []
    _sign_out(page, wait_for_app)

    _sign_in(page, url, ADMIN, wait_for_app)
    _open(page, f"{url}/jobs", "Jobs", wait_for_app)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("Nothing queued or running.")).to_be_visible(timeout=TIMEOUT_MS)
    assert _store(signin_server, "SELECT status FROM jobs") == [("cancelled",)]
    _open(page, f"{url}/models", "Models", wait_for_app)
    page.get_by_role("button", name="Use as default").click()
    expect(page.get_by_text("Default model:")).to_be_visible(timeout=TIMEOUT_MS)
    [(saved,)] = _store(signin_server, "SELECT value FROM settings WHERE key = 'dashboard.default_model'")
    assert Path(saved).suffix == ".pth"
    expect(page.get_by_text("Only an administrator")).to_have_count(0)
    _sign_out(page, wait_for_app)
