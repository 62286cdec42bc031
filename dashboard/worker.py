"""``python -m dashboard.worker``: an alias of ``python -m jobs.worker`` kept for one release
(the worker and its job kinds live in the ``jobs`` package now)."""

from __future__ import annotations

import sys

from jobs.worker import main

if __name__ == "__main__":
    sys.exit(main())
