"""CLI: ``python -m robustness.study run STUDY.yaml`` and ``report STUDY.yaml``.

``run`` queues every job the study still needs (registration, import, derivation, inference),
waits for them with progress, and writes the study's tables; ``report`` writes the tables,
figures and HTML report from what is stored, queueing nothing. A bad study file exits with
status 2 and one line naming the key; a failed job exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustness.study.schema import StudyFileError, load_study
from robustness.study.store import StoreConflict
from core.cli_errors import UserError, one_line, run_main

DEFAULT_OUTPUT = Path("output") / "studies"  # + /<study name>


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m robustness.study",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, what in (
        ("run", "do the study's missing jobs, then write its outputs"),
        ("report", "write the outputs from stored scores (no jobs)"),
    ):
        q = sub.add_parser(name, help=what)
        q.add_argument("study", help="the study file (YAML)")
        q.add_argument(
            "--output", type=Path, default=None, help=f"output folder (default: {DEFAULT_OUTPUT}/<study name>)"
        )
        q.add_argument("--database-url", default=None, help="overrides DATABASE_URL")
        q.add_argument(
            "--ci",
            type=int,
            default=None,
            metavar="N",
            help="bootstrap N replicates for 95%% intervals (0: none; default: the study file's bootstrap section)",
        )
        q.add_argument(
            "--formats", default="md,csv,json", help="comma-separated: md, csv, json, tex, figures, html, all"
        )
        q.add_argument(
            "--delta",
            action="append",
            default=[],
            metavar="A:B",
            help="model A minus model B per condition, with a paired bootstrap "
            "interval (repeatable; adds to the study file's deltas)",
        )
        q.add_argument("--no-progress", action="store_true", help="no progress bars")
        if name == "run":
            q.add_argument(
                "--worker",
                choices=("auto", "inline", "external"),
                default="auto",
                help="who runs the jobs: a worker in this process (inline), one "
                "already running (external), or inline unless one is alive",
            )
            q.add_argument("--threads", type=int, default=None, help="torch CPU threads for inline inference")
    return p


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        study = load_study(args.study)
    except StudyFileError as exc:
        raise UserError(f"{Path(args.study).name}: {one_line(exc)}") from exc
    from robustness.study.report import ReportOptions, write_outputs
    from robustness.study.runner import JobFailed, RunOptions, run_study

    out = args.output or DEFAULT_OUTPUT / study.name
    try:
        opts = ReportOptions.parse(args.formats, ci=args.ci, deltas=args.delta, study=study)
        if args.cmd == "run":
            run_study(
                study,
                RunOptions(
                    url=args.database_url, worker=args.worker, progress=not args.no_progress, threads=args.threads
                ),
            )
        written = write_outputs(study, out, opts, url=args.database_url)
    except JobFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: queued jobs stay in the store; run again to resume", file=sys.stderr)
        return 130
    print(written.headline)
    for path in written.files:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the study CLI; user errors print one line and return 2 (core.cli_errors)."""
    return run_main(
        lambda: _main(argv), user_errors=(StudyFileError, StoreConflict, ValueError, KeyError, FileNotFoundError)
    )


if __name__ == "__main__":
    sys.exit(main())
