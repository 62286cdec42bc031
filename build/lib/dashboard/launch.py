"""``spai-dashboard [streamlit options]``: start the dashboard from anywhere.

Streamlit reads ``.streamlit/config.toml`` from the working directory, so the server is started
from the repository root: the loopback bind, XSRF protection, upload cap and usage-statistics
setting there apply however the command was launched.
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


def main(argv: list[str] | None = None) -> None:
    """Replace this process by ``streamlit run dashboard/app.py`` in the repository root."""
    args = streamlit_argv(sys.argv[1:] if argv is None else argv)
    os.chdir(REPO_ROOT)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
