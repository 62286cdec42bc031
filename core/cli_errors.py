"""User errors on the command line: one line naming the file, row or value, exit status 2.

Every CLI of the project (``python -m spai``, ``db``, ``robustness``, ``robustness.evaluate``,
``jobs.worker``) runs its main function through ``run_main``: a ``UserError`` (or one of
the exception types the CLI declares as user errors) prints ``error: <message>`` on one line to
stderr and returns 2; anything else is a bug and keeps its traceback.

Example::

    from core.cli_errors import UserError, closest, run_main

    def _main(argv):
        if kind not in KINDS:
            raise UserError(f"unknown job kind {kind!r}{closest(kind, KINDS)}")

    def main(argv=None) -> int:
        return run_main(lambda: _main(argv), user_errors=(FileNotFoundError,))
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable

import click

__all__ = ["EXIT_USER_ERROR", "UserError", "closest", "one_line", "run_main"]

EXIT_USER_ERROR = 2  # as argparse and click use for usage errors
SUGGESTIONS = 3  # closest choices named in "did you mean"
SHOW_ALL_BELOW = 12  # fewer choices than this are listed in full


class UserError(Exception):
    """A mistake in the user's input or environment that the user can fix."""


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a KeyError's message without its quotes)."""
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(str(text).split())
    return text or type(exc).__name__


def closest(value: str, choices: Iterable[str], *, listing: str | None = None) -> str:
    """A suffix for an "unknown X" message: the closest choices, or all of a short list.

    ``listing`` names where the full list is (e.g. "python -m robustness list").
    """
    options = sorted(set(choices))
    if not options:
        return " (there are none)"
    if len(options) < SHOW_ALL_BELOW:
        return f"; valid: {', '.join(options)}"
    near = difflib.get_close_matches(value, options, n=SUGGESTIONS, cutoff=0.5)
    if not near:  # e.g. a prefix such as "jpeg" for "jpeg/q75"
        near = [o for o in options if o.startswith(value) or value in o][:SUGGESTIONS]
    where = f"; `{listing}` lists all {len(options)}" if listing else f" ({len(options)} known)"
    return (f"; did you mean {', '.join(near)}?" if near else "") + where


def run_main(main: Callable[[], int | None], *, user_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a CLI's main; print user errors as one line and return 2 for them."""
    try:
        return int(main() or 0)
    except (UserError, *user_errors) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except click.ClickException as exc:  # click's own usage errors and ClickException
        print(f"error: {one_line(click.ClickException(exc.format_message()))}", file=sys.stderr)
        return EXIT_USER_ERROR
