"""The project installs as a package: console scripts resolve and run."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_console_script_targets_are_callables(name: str) -> None:
    module, _, attr = SCRIPTS[name].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_installed_and_spai_script_runs() -> None:
    try:
        dist = distribution("spai-robustness-lab")
    except PackageNotFoundError:
        pytest.fail("the project is not installed: run `pip install -e .` (the README's commands do)")
    installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert installed == SCRIPTS
    out = subprocess.run(
        [str(Path(sys.executable).parent / "spai"), "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    for command in ("infer", "test", "train", "export-onnx"):
        assert command in out.stdout


def test_dashboard_launcher_runs_the_app_from_the_repository_root() -> None:
    from dashboard.launch import APP, REPO_ROOT, streamlit_argv

    argv = streamlit_argv(["--server.port", "9999"])
    assert argv[1:4] == ["-m", "streamlit", "run"]
    assert Path(argv[4]) == APP and APP.is_file()
    assert (REPO_ROOT / ".streamlit" / "config.toml").is_file()
    assert argv[-2:] == ["--server.port", "9999"]


def test_wheel_ships_the_files_the_code_reads(tmp_path: Path) -> None:
    """A non-editable install (`pip install .`) gets every file of the packages' folders: the
    demo photos and their licences, the meme assets, the study's scores, the migrations."""
    import shutil
    import zipfile

    src = tmp_path / "src"  # a copy, so the build's folders never land in the checkout
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]:
        if (ROOT / name.rstrip("*")).is_dir():
            shutil.copytree(ROOT / name.rstrip("*"), src / name.rstrip("*"), ignore=ignore)
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, src / name)
    files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file() and p.parent != src)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "whl"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp_path / "whl").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert "spai/demo/photos/mate/Garden.jpg" in files and "db/migrations/env.py" in files
    assert [f for f in files if f not in shipped] == []
