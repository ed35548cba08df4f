"""`reprolab data fetch|prepare|status` and `reprolab browse`: the CLI over reprolab.data."""

from __future__ import annotations

import argparse
import sys

import yaml

from reprolab.data.layout import PROFILES
from reprolab.errors import EXIT_FAILED


def _card(dataset_id: str):
    from reprolab.registry import load_registry

    return load_registry().dataset(dataset_id)


def _fetch(args: argparse.Namespace) -> int:
    from reprolab.data.fetch import fetch_dataset

    card = _card(args.dataset)
    try:
        report = fetch_dataset(card, args.profile, mirrors=args.mirror, extract=not args.no_extract,
                               progress=not args.quiet)
    except NotImplementedError as error:
        print(f"reprolab: {error}", file=sys.stderr)
        return EXIT_FAILED
    for item in report.fetched:
        origin = f" from {item.origin}" if item.origin else ""
        print(f"{card.id} [{args.profile}]: {item.source.filename}: {item.action}{origin}")
    for folder in report.extracted:
        print(f"{card.id} [{args.profile}]: extracted {folder}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from reprolab.data.prepare import prepare_dataset

    card = _card(args.dataset)
    options = {}
    for text in args.option:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise KeyError(f"--option {text!r}: expected KEY=VALUE, e.g. height=256")
        options[key] = yaml.safe_load(value) if value else None
    try:
        reports = prepare_dataset(card, args.profile, workers=args.workers, splits=args.split,
                                  allow_count_mismatch=args.allow_count_mismatch,
                                  progress=not args.quiet, options=options)
    except NotImplementedError as error:
        print(f"reprolab: {error}", file=sys.stderr)
        return EXIT_FAILED
    for r in reports:
        print(f"{card.id} [{args.profile}] {r.split}: {r.samples} samples in {r.shards} shards "
              f"({r.shards_written} written, {r.shards - r.shards_written} reused), {r.fingerprint}")
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from tabulate import tabulate

    from reprolab.data.status import HEADERS, status_table
    from reprolab.registry import load_registry

    registry = load_registry()
    cards = [registry.datasets[d] for d in (args.dataset or sorted(registry.datasets))
             if d in registry.datasets or _card(d)]
    profiles = PROFILES if args.profile == "all" else (args.profile,)
    rows = status_table(cards, profiles)
    if args.json:
        print(json.dumps([dict(zip(HEADERS, r.row(), strict=True)) for r in rows], indent=2))
    else:
        print(tabulate([r.row() for r in rows], headers=HEADERS, tablefmt="github"))
    return 0


def _browse(args: argparse.Namespace) -> int:
    from reprolab.data.browse import browse

    _card(args.dataset)
    browse(args.dataset, args.split, args.profile, run=args.run, stage=args.stage, limit=args.limit, port=args.port)
    return 0


def _profile_option(parser: argparse.ArgumentParser, *, allow_all: bool = False) -> None:
    choices = (*PROFILES, "all") if allow_all else PROFILES
    parser.add_argument("--profile", choices=choices, default="all" if allow_all else "full",
                        help="full: the real data; tiny: the fixture built by the project")


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="fetch, prepare and inspect datasets",
                                 description="The dataset manager (see `reprolab list datasets`).")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="STEP")

    p = sub.add_parser("fetch", help="download, verify and extract a dataset's sources",
                       description="Download (resume, retry), verify checksums, move into raw/ "
                                   "atomically and extract archives safely. Files placed by hand "
                                   "in raw/ are accepted when their checksum matches.")
    p.add_argument("dataset")
    _profile_option(p)
    p.add_argument("--mirror", action="append", default=[], metavar="URL_OR_DIR",
                   help="extra base URL or folder to try after the card's URLs (repeatable)")
    p.add_argument("--no-extract", action="store_true", help="do not unpack archives")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_fetch)

    p = sub.add_parser("prepare", help="build manifests and shards from fetched data",
                       description="Encode every split into shards and a Parquet manifest, in "
                                   "parallel; a killed prepare resumes where it stopped.")
    p.add_argument("dataset")
    _profile_option(p)
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--split", action="append", default=None, help="only this split (repeatable)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="encoding option of the dataset's preparer, e.g. sthv2 height=null keeps "
                        "the native frame size (recorded in <split>.json; changes rewrite shards)")
    p.add_argument("--allow-count-mismatch", action="store_true",
                   help="prepare even if sample counts differ from the card (recorded)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_prepare)

    p = sub.add_parser("status", help="what is fetched, verified and prepared",
                       description="One row per dataset card and profile.")
    p.add_argument("dataset", nargs="*", help="only these datasets")
    _profile_option(p, allow_all=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_status)

    p = subparsers.add_parser("browse", help="look at a prepared split in the FiftyOne App",
                              description="Load a prepared manifest (and a run's predictions) "
                                          "into FiftyOne and launch the App on localhost.")
    p.add_argument("dataset")
    p.add_argument("--split", default=None,
                   help="split to show (default: the run's evaluated split, else validation or test)")
    p.add_argument("--run", default=None,
                   help="run id or run directory whose predictions to show (`reprolab evaluate` writes them); "
                        "with --stage, a chain's recipe id (or a run of one of its stages)")
    p.add_argument("--stage", default=None,
                   help="a chain's inference stage (e.g. cams, rw-labels) whose derived split to show: "
                        "its CAMs (`cam`) and pseudo labels (`pseudo_label`) beside the ground truth")
    p.add_argument("--profile", choices=PROFILES, default=None,
                   help="full: the real data; tiny: the fixture (default: the run's profile, else "
                        "full if prepared, else tiny, said so)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only the first N samples (a video's MP4 is written once per clip, on first view)")
    p.add_argument("--port", type=int, default=5151)
    p.set_defaults(handler=_browse)
