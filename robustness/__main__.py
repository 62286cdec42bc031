"""CLI: ``python -m robustness list`` and ``python -m robustness apply --condition ID ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robustness.batch import derive_items, read_csv_items, read_dir_items
from robustness.registry import get, list_conditions
from core.cli_errors import UserError, one_line, run_main


def _cmd_list(args: argparse.Namespace) -> int:
    conds = [c for c in list_conditions() if not args.family or c.family == args.family]
    width = max(len(c.id) for c in conds) if conds else 0
    for c in conds:
        print(f"{c.id:<{width}}  {c.description}")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    try:
        get(args.condition)
    except KeyError as exc:
        raise UserError(one_line(exc)) from None
    src = Path(args.input)
    if src.is_dir():
        items, name = read_dir_items(src, args.label), "images"
    elif src.is_file():
        root = Path(args.input_csv_root_dir) if args.input_csv_root_dir else None
        if root is not None and not root.is_dir():
            raise UserError(f"--input-csv-root-dir {root} is not a folder")
        try:
            items, name = read_csv_items(src, root), src.stem
        except UnicodeDecodeError:
            raise UserError(f"{src}: not a UTF-8 CSV file") from None
        except ValueError as exc:
            raise UserError(one_line(exc)) from None
    else:
        raise UserError(f"input {src} is neither a CSV file nor a folder")
    if not items:
        raise UserError(f"{src}: no images to derive")
    res = derive_items(items, args.condition, Path(args.output), name, progress=not args.no_progress)
    print(f"{res.n_ok} derived, {len(res.errors)} errors -> {res.csv_path}, {res.json_path}")
    for err in res.errors:
        print(f"error: {err['image']}: {err['error']}", file=sys.stderr)
    return 1 if res.errors else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m robustness``."""
    p = argparse.ArgumentParser(prog="python -m robustness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list all condition ids with a one-line description")
    ls.add_argument("--family", help="only this family (e.g. jpeg, instagram)")
    ls.set_defaults(func=_cmd_list)
    ap = sub.add_parser("apply", help="derive an image set under one condition")
    ap.add_argument("--condition", required=True, help="condition id (see `list`)")
    ap.add_argument("--input", required=True, help="SPAI CSV (image,class,split) or image folder")
    ap.add_argument(
        "--input-csv-root-dir",
        "--input_csv_root_dir",
        dest="input_csv_root_dir",
        help="root of the CSV's relative paths (default: the CSV's folder)",
    )
    ap.add_argument("--output", required=True, help="output folder")
    ap.add_argument(
        "--label",
        type=int,
        choices=(0, 1),
        help="class for folder inputs not under real/fake subfolders",
    )
    ap.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    ap.set_defaults(func=_cmd_apply)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (1 when some images failed, 2 on a user error)."""
    args = build_parser().parse_args(argv)
    return run_main(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
