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
    out = subprocess.run([str(Path(sys.executable).parent / "spai"), "--help"],
                         capture_output=True, text=True, timeout=120)
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
