"""``spai-dashboard [streamlit options]``: start the dashboard from anywhere.

Streamlit reads ``.streamlit/config.toml`` from the working directory, so the server is started
from the repository root: the loopback bind, XSRF protection, upload cap and usage-statistics
setting there apply however the command was launched. A bind other than loopback is refused
before anything starts unless sign-in is configured (an ``[auth]`` section in the secrets file)
or ``SPAI_ALLOW_UNAUTHENTICATED=1`` (see ``dashboard.access``; the app checks again, whatever
started it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "dashboard" / "app.py"


def streamlit_argv(extra: list[str]) -> list[str]:
    """The command line that runs the dashboard with this interpreter's streamlit."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), *extra]


def requested_address(extra: list[str], env: dict[str, str] | None = None) -> str | None:
    """The ``--server.address`` on the command line, else ``STREAMLIT_SERVER_ADDRESS``, else
    the repository's config.toml value (None when neither sets one: every interface)."""
    for i, arg in enumerate(extra):
        if arg.startswith("--server.address="):
            return arg.split("=", 1)[1]
        if arg == "--server.address" and i + 1 < len(extra):
            return extra[i + 1]
    env = os.environ if env is None else env
    if env.get("STREAMLIT_SERVER_ADDRESS"):
        return env["STREAMLIT_SERVER_ADDRESS"]
    import tomllib

    config = REPO_ROOT / ".streamlit" / "config.toml"
    if config.is_file():
        return tomllib.loads(config.read_text()).get("server", {}).get("address")
    return None


def secrets_files(extra: list[str]) -> list[Path]:
    """The secrets files Streamlit will read: ``--secrets.files`` on the command line, else
    ``~/.streamlit/secrets.toml`` and the repository's ``.streamlit/secrets.toml``."""
    given = [a.split("=", 1)[1] for a in extra if a.startswith("--secrets.files=")]
    given += [extra[i + 1] for i, a in enumerate(extra[:-1]) if a == "--secrets.files"]
    if given:
        return [Path(p).expanduser() for p in given]
    return [Path.home() / ".streamlit" / "secrets.toml", REPO_ROOT / ".streamlit" / "secrets.toml"]


def auth_configured(extra: list[str]) -> bool:
    """Whether a secrets file Streamlit will read has an ``[auth]`` section."""
    import tomllib

    for path in secrets_files(extra):
        if path.is_file() and "auth" in tomllib.loads(path.read_text()):
            return True
    return False


def main(argv: list[str] | None = None) -> None:
    """Replace this process by ``streamlit run dashboard/app.py`` in the repository root."""
    from dashboard.access import bind_problem

    extra = sys.argv[1:] if argv is None else argv
    problem = bind_problem(requested_address(extra), signed_in=auth_configured(extra))
    if problem:
        sys.exit(f"spai-dashboard: {problem}")
    args = streamlit_argv(extra)
    os.chdir(REPO_ROOT)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
