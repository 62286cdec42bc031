"""CLI of the prediction store.

python -m db migrate
python -m db import-study [FOLDER]
python -m db import-csv FILE.csv --model NAME [--condition ID [--new-condition]]
                        [--imageset NAME] [--root DIR]
python -m db register-folder DIR --name NAME --kind real|fake
python -m db register-csv FILE.csv --root DIR --name NAME
python -m db export OUT.{csv,parquet} [--run ID ...] [--model NAME ...] [--condition ID ...]
"""

from __future__ import annotations

import argparse
import sys

from db.session import StoreUnavailable, check_store, database_url, get_engine, session_scope
from core.cli_errors import UserError, one_line, run_main


def _print_report(rep) -> None:
    for key in ("runs", "images_added", "derived_added", "predictions_added", "added", "already_present"):
        if hasattr(rep, key):
            print(f"{key}: {getattr(rep, key)}")
    for what in ("conditions", "imagesets", "models"):
        if hasattr(rep, what):
            print(f"{what}: {len(getattr(rep, what))}")
    for path, why in getattr(rep, "skipped", []):
        print(f"skipped {path}: {why}")
    for p in getattr(rep, "problems", []):
        print(f"problem: {p}")


def main(argv: list[str] | None = None) -> int:
    """``python -m db``: user errors print one line and exit with status 2."""
    return run_main(lambda: _main(argv), user_errors=(StoreUnavailable,))


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m db", description="SPAI prediction store")
    ap.add_argument("--database-url", default=None, help="overrides DATABASE_URL")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("migrate", help="create or upgrade the schema")
    p = sub.add_parser("import-study", help="import a study folder of prediction CSVs")
    p.add_argument("folder", nargs="?", default=None)
    p = sub.add_parser("import-csv", help="import an official infer output CSV as a run")
    p.add_argument("csv")
    p.add_argument("--model", required=True)
    p.add_argument("--condition", default="original")
    p.add_argument("--imageset", default=None)
    p.add_argument("--root", default=None)
    p.add_argument("--score-column", default=None)
    p.add_argument(
        "--new-condition",
        action="store_true",
        help="create --condition although it is neither registered nor in the store",
    )
    p = sub.add_parser("register-folder", help="register a folder of images as an image set")
    p.add_argument("folder")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", required=True, choices=("real", "fake"))
    p.add_argument("--generator", default=None)
    p = sub.add_parser("register-csv", help="register an image,class,split CSV")
    p.add_argument("csv")
    p.add_argument("--root", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--split", default=None)
    p = sub.add_parser("export", help="export predictions to CSV or Parquet")
    p.add_argument("out")
    p.add_argument("--format", choices=("csv", "parquet"), default=None)
    p.add_argument("--run", type=int, action="append", dest="runs")
    p.add_argument("--model", action="append", dest="models")
    p.add_argument("--imageset", action="append", dest="imagesets")
    p.add_argument("--condition", action="append", dest="conditions")
    args = ap.parse_args(argv)
    url = args.database_url

    check_store(url)
    if args.cmd == "migrate":
        from db.migrate import current_revision

        print(f"{database_url(url)} at revision {current_revision(get_engine(url))}")
        return 0
    try:
        rep = _run(args, url)
    except (FileNotFoundError, ValueError) as exc:  # the library names the file, row or value
        raise UserError(one_line(exc)) from None
    if rep is not None:
        _print_report(rep)
    return 0


def _run(args: argparse.Namespace, url: str | None):
    """Run one store command; returns its report (None when it printed its own summary)."""
    with session_scope(url) as s:
        if args.cmd == "import-study":
            from db.importers import import_study

            rep = import_study(s, args.folder)
        elif args.cmd == "import-csv":
            from db.importers import import_csv

            rep = import_csv(
                s,
                args.csv,
                model_name=args.model,
                condition_id=args.condition,
                imageset=args.imageset,
                root=args.root,
                score_column=args.score_column,
                new_condition=args.new_condition,
            )
        elif args.cmd == "register-folder":
            from db.imagesets import register_folder

            rep = register_folder(s, args.folder, name=args.name, kind=args.kind, generator=args.generator)
        elif args.cmd == "register-csv":
            from db.imagesets import register_csv

            rep = register_csv(s, args.csv, args.root, name=args.name, split=args.split)
        else:
            from db.export import export_predictions

            n = export_predictions(
                s,
                args.out,
                fmt=args.format,
                run_ids=args.runs,
                models=args.models,
                imagesets=args.imagesets,
                conditions=args.conditions,
            )
            print(f"wrote {n} predictions to {args.out}")
            return None
    return rep


if __name__ == "__main__":
    sys.exit(main())
