"""Who may do what (issue 15.4), in the library functions the pages call: rows record their
owner (jobs, image sets, runs, models, also those a job creates in the worker); only the owner
or an administrator cancels, retries or deletes; only an administrator changes the default
model or registers server folders. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from dashboard import access, jobqueue, resources
from jobs.worker import JobWorker, WorkerConfig
from db import jobs, removal
from db.models import ImageSet, Job, Model, Run
from db.owners import LOCAL, Actor, NotAllowed, may_change, require_admin, require_owner
from db.queries import get_or_create_condition, get_or_create_run
from db.session import session_scope
from db.settings import DEFAULT_MODEL, get_setting, set_setting
from tiny_model import TINY_CFG, TINY_WEIGHTS

ALICE = Actor("alice@lab.org")
BOB = Actor("bob@lab.org")
ADMIN = Actor("root@lab.org", admin=True)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (24, 20), (30 * i, 90, 10)).save(path / f"{i}.png")
    return path


def _owned_set_and_model(url: str, tmp: Path, owner: Actor) -> tuple[int, int]:
    """A registered folder and the tiny model, both ``owner``'s."""
    from db.imagesets import register_folder

    with session_scope(url) as s:
        rep = register_folder(s, _folder(tmp / "imgs"), name="mine", kind="real", owner=owner.owner)
        model_id = jobqueue.register_model(s, TINY_WEIGHTS, name="tiny", cfg=TINY_CFG, origin="demo", owner=owner.owner)
    return rep.imageset_ids["mine"], model_id


def test_rules_and_their_messages() -> None:
    assert may_change(ALICE, "alice@lab.org") and not may_change(BOB, "alice@lab.org")
    assert may_change(ADMIN, "alice@lab.org") and may_change(ADMIN, None)
    assert may_change(LOCAL, "alice@lab.org")  # no sign-in: everyone may do everything
    assert not may_change(BOB, None)  # rows made before sign-in: administrators only
    assert not may_change(Actor(None), None)  # a signed-out visitor changes nothing
    with pytest.raises(
        NotAllowed,
        match=r"Only its owner \(alice@lab.org\) or an administrator "
        r"may cancel job 3; you are signed in as bob@lab.org",
    ):
        require_owner(BOB, "alice@lab.org", "cancel job 3")
    with pytest.raises(
        NotAllowed, match="Only an administrator may change the default model; you are signed in as bob@lab.org"
    ):
        require_admin(BOB, "change the default model")
    require_owner(ALICE, "alice@lab.org", "x")
    require_admin(ADMIN, "x")
    require_admin(LOCAL, "x")


@pytest.mark.parametrize(
    "user, env, expected",
    [
        ({"is_logged_in": True, "email": "Alice@Lab.org", "sub": "1"}, {}, Actor("alice@lab.org")),
        (
            {"is_logged_in": True, "email": "root@lab.org"},
            {"SPAI_ADMINS": "x@y, ROOT@lab.org"},
            Actor("root@lab.org", admin=True),
        ),
        (
            {"is_logged_in": True, "email": "root@lab.org", "email_verified": False, "sub": "s9"},
            {"SPAI_ADMINS": "root@lab.org"},
            Actor("s9"),
        ),  # an unverified address is not an identity
        ({"is_logged_in": True, "sub": "s9"}, {"SPAI_ADMINS": "s9"}, Actor("s9", admin=True)),
        ({"is_logged_in": True, "sub": "S9"}, {"SPAI_ADMINS": "s9"}, Actor("S9")),  # subjects: exact
        ({"is_logged_in": False, "email": "alice@lab.org"}, {}, None),
        ({"email": "test@example.com"}, {}, None),
    ],
)
def test_signed_in_users_become_actors(user: dict, env: dict, expected: Actor | None) -> None:
    assert access.actor_for(user, env) == expected


def test_an_auth_section_is_complete_with_one_provider() -> None:
    full = {
        "redirect_uri": "http://h/oauth2callback",
        "cookie_secret": "s",
        "client_id": "c",
        "client_secret": "x",
        "server_metadata_url": "http://p/.well-known/openid-configuration",
    }
    assert access.auth_problem(full) is None
    nested = {k: full[k] for k in ("redirect_uri", "cookie_secret")} | {
        "lab": {k: full[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    }
    assert access.auth_problem(nested) is None
    assert access.auth_problem({"redirect_uri": "x"}) == (
        "[auth] lacks cookie_secret, client_id, client_secret, server_metadata_url"
    )
    assert access.auth_problem(None) == "no [auth] section"


def test_with_sign_in_any_bind_is_allowed_and_no_banner_shows() -> None:
    assert access.bind_problem("0.0.0.0", {}, signed_in=True) is None
    assert access.banner("0.0.0.0", {access.ENV_ALLOW: "1"}, signed_in=True) is None
    assert access.bind_problem("0.0.0.0", {}) is not None  # unchanged without sign-in


def test_jobs_record_their_owner_and_only_owner_or_admin_cancel_or_retry(db_url: str) -> None:
    with session_scope(db_url) as s:
        mine = jobqueue.enqueue_import_study(s, actor=ALICE)
        local = jobs.enqueue(s, "import", {"source": "csv"})
        assert jobqueue.status(s, mine).owner == "alice@lab.org"
        assert jobqueue.status(s, local).owner is None
    with session_scope(db_url) as s, pytest.raises(NotAllowed, match="alice@lab.org"):
        jobqueue.cancel(s, mine, actor=BOB)
    with session_scope(db_url) as s:
        assert jobqueue.status(s, mine).status == "queued"  # the refusal changed nothing
        with pytest.raises(NotAllowed, match="made without sign-in"):
            jobqueue.cancel(s, local, actor=ALICE)
        assert jobqueue.cancel(s, mine, actor=ALICE) == "cancelled"
    with session_scope(db_url) as s, pytest.raises(NotAllowed):
        jobqueue.retry(s, mine, actor=BOB)
    with session_scope(db_url) as s:
        assert jobqueue.status(s, mine).status == "cancelled"
        jobqueue.retry(s, mine, actor=ADMIN)
        assert jobqueue.status(s, mine).status == "queued"
        assert jobqueue.cancel(s, local, actor=ADMIN) == "cancelled"
        with pytest.raises(KeyError, match="no job with id 999"):
            jobqueue.cancel(s, 999, actor=ADMIN)


def test_only_an_administrator_registers_server_folders(db_url: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "f")
    with session_scope(db_url) as s:
        with pytest.raises(NotAllowed, match="Only an administrator may register server folders"):
            jobqueue.enqueue_register_folder(s, str(folder), name="x", kind="real", actor=ALICE)
        with pytest.raises(NotAllowed):
            jobqueue.enqueue_register_csv(s, str(folder / "a.csv"), str(folder), name="x", actor=ALICE)
        with pytest.raises(NotAllowed):
            jobqueue.enqueue_import_study(s, str(folder), actor=ALICE)
        with pytest.raises(NotAllowed):
            jobqueue.enqueue_import_csv(s, str(folder / "a.csv"), model_name="m", actor=ALICE)
        assert s.scalars(select(Job.id)).all() == []
        job_id = jobqueue.enqueue_register_folder(s, str(folder), name="x", kind="real", actor=ADMIN)
        assert jobqueue.status(s, job_id).owner == "root@lab.org"


def test_only_an_administrator_changes_the_default_model(db_url: str, tmp_path: Path) -> None:
    with session_scope(db_url) as s:
        set_setting(s, DEFAULT_MODEL, "/before.pth")
    with pytest.raises(NotAllowed, match="change the default model"):
        resources.save_default_model(str(TINY_WEIGHTS), actor=ALICE)
    with pytest.raises(NotAllowed):
        resources.save_default_model(None, actor=ALICE)
    with session_scope(db_url) as s:
        assert get_setting(s, DEFAULT_MODEL) == "/before.pth"
    resources.save_default_model(str(TINY_WEIGHTS), actor=ADMIN)
    with session_scope(db_url) as s:
        assert get_setting(s, DEFAULT_MODEL) == str(TINY_WEIGHTS)
    resources.save_default_model(None, actor=LOCAL)
    with session_scope(db_url) as s:
        assert get_setting(s, DEFAULT_MODEL) is None


def test_rows_a_job_creates_are_the_job_owners(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker registers Alice's folder as her sets and scores them into her run, with a
    model she registered through the page's enqueue."""
    monkeypatch.setenv("SPAI_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "lab"
    _folder(folder / "real")
    _folder(folder / "fake")
    with session_scope(sqlite_url) as s:
        jobqueue.enqueue_register_folder(s, str(folder), name="lab", kind=None, actor=ADMIN)
    assert JobWorker(WorkerConfig(once=True), url=sqlite_url).serve() == 1
    with session_scope(sqlite_url) as s:
        sets = dict(s.execute(select(ImageSet.name, ImageSet.id)).all())
        assert set(s.scalars(select(ImageSet.owner))) == {"root@lab.org"}
        [job_id] = jobqueue.enqueue_score_set(
            s, weights=TINY_WEIGHTS, cfg=TINY_CFG, imageset_ids=[sets["lab-real"]], conditions=["original"], actor=ALICE
        )
        assert s.scalars(select(Model.owner)).one() == "alice@lab.org"
    with session_scope(sqlite_url) as s:
        s.get(Job, job_id).params = dict(s.get(Job, job_id).params, device="cpu")
    assert JobWorker(WorkerConfig(once=True), url=sqlite_url).serve() == 1
    with session_scope(sqlite_url) as s:
        assert jobqueue.status(s, job_id).status == "done"
        assert s.scalars(select(Run.owner)).one() == "alice@lab.org"


def test_only_owner_or_admin_deletes_and_others_results_are_kept(db_url: str, tmp_path: Path) -> None:
    set_id, model_id = _owned_set_and_model(db_url, tmp_path, ALICE)
    with session_scope(db_url) as s:
        get_or_create_condition(s, "original")
        bobs = get_or_create_run(s, model_id, set_id, "original", owner=BOB.owner).id
        job = jobs.enqueue(
            s, "infer", {"model_id": model_id, "imageset_id": set_id, "condition_id": "original"}, owner=BOB.owner
        )
    with session_scope(db_url) as s:
        with pytest.raises(NotAllowed, match=r"Only its owner \(bob@lab.org\)"):
            removal.delete_run(s, bobs, actor=ALICE)
        with pytest.raises(NotAllowed, match="has runs of bob@lab.org"):
            removal.delete_imageset(s, set_id, actor=ALICE)
        with pytest.raises(NotAllowed, match="has runs of bob@lab.org"):
            removal.delete_model(s, model_id, actor=ALICE)
        with pytest.raises(NotAllowed, match=r"Only its owner \(alice@lab.org\)"):
            removal.delete_imageset(s, set_id, actor=BOB)
        with pytest.raises(ValueError, match="cancel it first"):
            removal.delete_job(s, job, actor=BOB)
        with pytest.raises(ValueError, match=f"used by queued or running job\\(s\\) {job}"):
            removal.delete_run(s, bobs, actor=BOB)
        jobqueue.cancel(s, job, actor=BOB)
    with session_scope(db_url) as s:
        with pytest.raises(NotAllowed):
            removal.delete_job(s, job, actor=ALICE)
        removal.delete_job(s, job, actor=BOB)
        removal.delete_run(s, bobs, actor=BOB)
    with session_scope(db_url) as s:
        assert s.get(Job, job) is None and s.get(Run, bobs) is None
        removal.delete_imageset(s, set_id, actor=ALICE)  # no one else's runs left
    bobs_set, same_model = _owned_set_and_model(db_url, tmp_path / "2", BOB)
    assert same_model == model_id  # the same file: Alice's model row
    with session_scope(db_url) as s:
        assert s.scalars(select(ImageSet.owner)).all() == ["bob@lab.org"]  # Alice's is gone
        get_or_create_run(s, model_id, bobs_set, "original", owner=BOB.owner)
    with session_scope(db_url) as s:
        removal.delete_model(s, model_id, actor=ADMIN)  # an administrator may, runs and all
    with session_scope(db_url) as s:
        assert s.get(Model, model_id) is None and s.scalars(select(Run.id)).all() == []


def test_the_launcher_allows_any_bind_when_a_secrets_file_configures_sign_in(
    tmp_path: Path,
) -> None:
    from dashboard import launch

    with_auth, without = tmp_path / "auth.toml", tmp_path / "other.toml"
    with_auth.write_text('[auth]\nredirect_uri = "http://h:8501/oauth2callback"\n')
    without.write_text('[database]\nurl = "x"\n')
    assert launch.auth_configured(["--secrets.files", str(with_auth)])
    assert launch.auth_configured([f"--secrets.files={with_auth}"])
    assert not launch.auth_configured(["--secrets.files", str(without)])
    assert not launch.auth_configured(["--secrets.files", str(tmp_path / "missing.toml")])
    assert launch.secrets_files([])[-1] == launch.REPO_ROOT / ".streamlit" / "secrets.toml"
