"""Sign-in in the app (AppTest; issue 15.4): with an [auth] secrets section every page shows a
signed-out visitor the sign-in screen and nothing else, any bind is allowed, the sidebar says
who is signed in; the pages show the job queue's and the default model's refusals; signing out
brings the sign-in screen back. The browser test against a real OpenID Connect provider is
tests/e2e/test_e2e_signin.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config

from streamlit.testing.v1 import AppTest

from app_support import APP, TIMEOUT_S, new_app, texts, use_store
from dashboard import jobqueue
from dashboard.access import ENV_ADMINS, ENV_ALLOW
from db.owners import Actor
from db.session import session_scope
from db.settings import DEFAULT_MODEL, get_setting
from tiny_model import TINY_WEIGHTS

PAGES = ("home", "score", "inspect", "imagesets", "jobs", "compare", "models", "train")
AUTH = {
    "redirect_uri": "http://lab.example:8501/oauth2callback",
    "cookie_secret": "c" * 32,
    "client_id": "spai",
    "client_secret": "secret",
    "server_metadata_url": "http://idp.example/.well-known/openid-configuration",
}
ALICE = {"is_logged_in": True, "email": "alice@lab.org", "sub": "alice", "name": "Alice"}
BOB = {"is_logged_in": True, "email": "bob@lab.org", "sub": "bob", "name": "Bob"}
ROOT = {"is_logged_in": True, "email": "root@lab.org", "sub": "root", "name": "Root"}
VIEWS = APP.parent / "views"


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A store, root@lab.org as the administrator, the server bound to every interface and no
    SPAI_ALLOW_UNAUTHENTICATED (sign-in alone allows the bind). Yields the store URL."""
    use_store(monkeypatch, tmp_path / "spai.db")
    monkeypatch.setenv(ENV_ADMINS, "root@lab.org")
    monkeypatch.delenv(ENV_ALLOW, raising=False)
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield f"sqlite:///{tmp_path / 'spai.db'}"
    config.set_option("server.address", before)
    from db.session import dispose_all

    dispose_all()


def _page(name: str, user: dict, auth: dict | None = None, *, frame: bool = True):
    """The page in the app's frame (sign-in, sidebar), or alone (``frame=False``: a button in
    a polling fragment reruns only its fragment, which AppTest cannot do inside the frame)."""
    at = new_app() if frame else AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=TIMEOUT_S)
    at.secrets = {"auth": dict(AUTH if auth is None else auth)}
    at.user = dict(user)
    if frame:
        at.switch_page(f"views/{name}.py")
    return at.run()


def test_signed_out_visitors_see_only_the_sign_in_screen(lab: str) -> None:
    for name in PAGES:
        at = _page(name, {"is_logged_in": False})
        assert not at.exception, name
        assert [t.value for t in at.title] == ["SPAI dashboard"], name
        assert [b.label for b in at.button] == ["Sign in"], name
        assert not at.text_input and not at.selectbox and not at.sidebar.button, name
        assert not any("Refusing" in e for e in texts(at, "error")), name


def test_an_incomplete_auth_section_serves_nothing(lab: str) -> None:
    at = _page("jobs", ALICE, auth={"redirect_uri": AUTH["redirect_uri"]})
    assert not at.exception
    assert any("incomplete: [auth] lacks cookie_secret" in e for e in texts(at, "error"))
    assert not at.title and not at.button


def test_signed_in_every_page_is_served_on_any_bind_without_the_banner(lab: str) -> None:
    for name in PAGES:
        at = _page(name, BOB)
        assert not at.exception, name
        assert at.title and at.title[0].value != "SPAI dashboard", name
        assert not any("No sign-in" in w for w in texts(at, "warning")), name
        assert not any("Refusing" in e for e in texts(at, "error")), name
        assert "Signed in as **bob@lab.org** (user)" in [c.value for c in at.sidebar.caption]
    at = _page("home", ROOT)
    assert "Signed in as **root@lab.org** (administrator)" in [c.value for c in at.sidebar.caption]


def test_a_user_cannot_cancel_anothers_job_an_administrator_can(lab: str) -> None:
    with session_scope(lab) as s:
        job = jobqueue.enqueue_import_study(s, actor=Actor("alice@lab.org"))
    at = _page("jobs", BOB, frame=False)
    assert at.dataframe[0].value.set_index("id").loc[job, "owner"] == "alice@lab.org"
    at.button(key=f"jobs.cancel.{job}").click().run()
    assert not at.exception
    assert any(
        f"Only its owner (alice@lab.org) or an administrator may cancel job {job}; you "
        "are signed in as bob@lab.org" in e
        for e in texts(at, "error")
    )
    with session_scope(lab, readonly=True) as s:
        assert jobqueue.status(s, job).status == "queued"
    at = _page("jobs", ROOT, frame=False)
    at.button(key=f"jobs.cancel.{job}").click().run()
    assert not at.exception and not any("Only" in e for e in texts(at, "error"))
    with session_scope(lab, readonly=True) as s:
        assert jobqueue.status(s, job).status == "cancelled"


def test_only_an_administrator_changes_the_default_model(lab: str) -> None:
    at = _page("models", ALICE)
    at.button(key="models.set_default").click().run()
    assert not at.exception
    assert any(
        "Only an administrator may change the default model; you are signed in as alice@lab.org" in e
        for e in texts(at, "error")
    )
    with session_scope(lab, readonly=True) as s:
        assert get_setting(s, DEFAULT_MODEL) is None
    at = _page("models", ROOT)
    at.button(key="models.set_default").click().run()
    assert not at.exception and not texts(at, "error")
    with session_scope(lab, readonly=True) as s:
        assert get_setting(s, DEFAULT_MODEL) == str(TINY_WEIGHTS)


def test_users_are_told_they_cannot_register_server_folders(lab: str, tmp_path: Path) -> None:
    at = _page("imagesets", BOB)
    assert "Only an administrator may register server folders and CSVs." in texts(at, "caption")
    folder = tmp_path / "data" / "mine"  # inside the data directory, an allowed root
    folder.mkdir(parents=True)
    at.text_input(key="imagesets.folder").set_value(str(folder)).run()
    at.radio(key="imagesets.folder_kind").set_value("real").run()
    at.button(key="imagesets.register_folder").click().run()
    assert any("Only an administrator may register server folders" in e for e in texts(at, "error"))
    with session_scope(lab, readonly=True) as s:
        assert jobqueue.recent(s) == []


def test_signing_out_brings_back_the_sign_in_screen(lab: str) -> None:
    at = _page("jobs", ALICE)
    at.sidebar.button(key="signin.logout").click().run()
    assert not at.exception
    assert at.user.get("is_logged_in") is False
    at.run()
    assert [b.label for b in at.button] == ["Sign in"]
    assert [t.value for t in at.title] == ["SPAI dashboard"]


def test_the_secrets_file_stays_out_of_git_and_the_docker_image() -> None:
    repo = APP.parent.parent
    assert ".streamlit/secrets.toml" in (repo / ".gitignore").read_text().splitlines()
    assert ".streamlit/secrets.toml" in (repo / ".dockerignore").read_text().splitlines()
    docker = (repo / "Dockerfile").read_text()
    assert "/app/.streamlit/secrets.toml:ro" in docker and "SPAI_ADMINS=" in docker


def test_a_user_cannot_retry_or_delete_anothers_job(lab: str) -> None:
    from db import jobs
    from db.models import Job

    with session_scope(lab) as s:
        job = jobs.enqueue(s, "import", {"source": "study", "folder": None}, owner="alice@lab.org")
        s.get(Job, job).status = "failed"
    at = _page("jobs", BOB, frame=False)
    at.button(key="jobs.retry").click().run()
    assert any(
        f"Only its owner (alice@lab.org) or an administrator may retry job {job}" in e for e in texts(at, "error")
    )
    at.button(key="jobs.delete").click().run()
    assert any(f"may delete job {job}; you are signed in as bob@lab.org" in e for e in texts(at, "error"))
    with session_scope(lab, readonly=True) as s:
        assert jobqueue.status(s, job).status == "failed"
    at = _page("jobs", ALICE, frame=False)
    at.button(key="jobs.delete").click().run()
    assert not at.exception and not texts(at, "error")
    with session_scope(lab, readonly=True) as s:
        assert jobqueue.recent(s) == []


def test_image_sets_and_models_are_deleted_by_their_owner_only(lab: str, tmp_path: Path) -> None:
    from PIL import Image

    from db.imagesets import register_folder
    from db.models import ImageSet, Model

    folder = tmp_path / "data" / "mine"
    folder.mkdir(parents=True)
    Image.new("RGB", (24, 20), (10, 90, 10)).save(folder / "a.png")
    with session_scope(lab) as s:
        register_folder(s, folder, name="mine", kind="real", owner="alice@lab.org")
        jobqueue.register_model(s, TINY_WEIGHTS, name="tiny", origin="demo", owner="alice@lab.org")
    for user, refused in ((BOB, True), (ALICE, False)):
        at = _page("imagesets", user)
        assert at.dataframe[0].value.set_index("name").loc["mine", "owner"] == "alice@lab.org"
        at.checkbox(key="imagesets.delete_sure").check().run()
        at.button(key="imagesets.delete").click().run()
        assert not at.exception
        said = any(
            "Only its owner (alice@lab.org) or an administrator may delete image set 'mine'" in e
            for e in texts(at, "error")
        )
        assert said is refused
        at = _page("models", user)
        stored = at.dataframe[-1].value.set_index("name")
        assert stored.loc["tiny", "owner"] == "alice@lab.org"
        at.button(key="models.delete").click().run()
        assert not at.exception
        said = any("may delete model 'tiny'; you are signed in as bob@lab.org" in e for e in texts(at, "error"))
        assert said is refused
        with session_scope(lab, readonly=True) as s:
            assert (s.query(ImageSet).count(), s.query(Model).count()) == ((1, 1) if refused else (0, 0))
    assert folder.joinpath("a.png").is_file()  # files on disk stay


def test_a_run_is_deleted_from_its_job_by_its_owner_only(lab: str, tmp_path: Path) -> None:
    from PIL import Image

    from db import jobs
    from db.imagesets import register_folder
    from db.models import Job, Run
    from db.queries import get_or_create_condition, get_or_create_run

    folder = tmp_path / "data" / "mine"
    folder.mkdir(parents=True)
    Image.new("RGB", (24, 20), (10, 90, 10)).save(folder / "a.png")
    with session_scope(lab) as s:
        set_id = register_folder(s, folder, name="mine", kind="real").imageset_ids["mine"]
        model_id = jobqueue.register_model(s, TINY_WEIGHTS, name="tiny", origin="demo")
        get_or_create_condition(s, "original")
        run = get_or_create_run(s, model_id, set_id, "original", status="done", owner="alice@lab.org").id
        job = jobs.enqueue(
            s, "infer", {"model_id": model_id, "imageset_id": set_id, "condition_id": "original"}, owner="alice@lab.org"
        )
        row = s.get(Job, job)
        row.status, row.result = "done", {"run_id": run}
    at = _page("jobs", BOB, frame=False)
    at.button(key="jobs.delete_run").click().run()
    assert any(
        f"Only its owner (alice@lab.org) or an administrator may delete run {run}" in e for e in texts(at, "error")
    )
    at = _page("jobs", ALICE, frame=False)
    at.button(key="jobs.delete_run").click().run()
    assert not at.exception and not texts(at, "error")
    with session_scope(lab, readonly=True) as s:
        assert s.get(Run, run) is None and jobqueue.status(s, job).status == "done"
    at.button(key="jobs.delete_run").click().run()  # again: the run is gone, and it says so
    assert f"no run with id {run}" in texts(at, "error")
