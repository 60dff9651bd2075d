"""Command line of the weights cache (``--help`` on each command)::

    python -m remixer.weights list
    python -m remixer.weights fetch remix-default          # a group, or file names, or --all
    python -m remixer.weights verify [NAME ...]

``verify`` re-hashes files against the manifest; whether the BTC inside each chord checkpoint
equals ``btc_model_large_voca.pt`` is reported by the acceptance run (``make accept``).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from remixer.weights.manifest import Manifest, UnknownWeightError, format_bytes
from remixer.weights.store import CLI, WeightsError, WeightsStore, WeightState

__all__ = ["main"]


def _cmd_list(store: WeightsStore, _: argparse.Namespace) -> int:
    rows = store.status()
    width = max(len(row.spec.name) for row in rows)
    print(f"{'NAME':<{width}}  {'STATE':<8}  {'SIZE':>9}  {'LICENSE':<12}  PATH")
    for row in rows:
        # A whole file on disk shows what it holds; otherwise what the manifest expects.
        on_disk = row.state not in (WeightState.MISSING, WeightState.PARTIAL)
        size = format_bytes(row.size_on_disk) if on_disk else row.spec.size_text
        print(f"{row.spec.name:<{width}}  {row.state.value:<8}  {size:>9}  {row.spec.license:<12}  {row.spec.path}")
    print("\n(~: an estimate; unknown: not published, see size_source in the manifest)\n\ngroups:")
    for group, members in store.manifest.groups.items():
        specs = store.manifest.group(group)
        ready = sum((store.root / spec.path).is_file() for spec in specs)
        print(f"  {group} ({ready}/{len(members)} on disk, {_group_size(specs)}): "
              f"{store.manifest.group_descriptions.get(group, '')}")
    print(f"\ncache: {store.root}")
    return 0


def _group_size(specs: list) -> str:
    known = [spec.expected_size for spec in specs if spec.expected_size is not None]
    approx = "" if all(spec.size is not None for spec in specs if spec.expected_size is not None) else "~"
    unknown = len(specs) - len(known)
    return f"{approx}{format_bytes(sum(known))}" + (f" + {unknown} of unknown size" if unknown else "")


def _cmd_fetch(store: WeightsStore, args: argparse.Namespace) -> int:
    if not args.names and not args.all:
        print("fetch: name at least one file or group, or pass --all", file=sys.stderr)
        return 2
    specs = list(store.manifest.files) if args.all else store.manifest.resolve(args.names)
    failed = 0
    for spec in specs:
        try:
            print(f"{spec.name}: {store.fetch(spec.name, force=args.force)}")
        except WeightsError as exc:
            failed += 1
            print(f"{spec.name}: FAILED: {exc}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(specs)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _cmd_verify(store: WeightsStore, args: argparse.Namespace) -> int:
    explicit = bool(args.names)
    specs = store.manifest.resolve(args.names) if explicit else list(store.manifest.files)
    failed = 0
    for spec in specs:
        if not (store.root / spec.path).is_file():
            # Without names only the files on disk are checked; named files must be there.
            failed += explicit
            print(f"{spec.name}: missing")
            continue
        problem, digests = store.rehash(spec)
        if problem is not None:
            failed += 1
            print(f"{spec.name}: FAILED: {problem}")
        elif not spec.has_digest:
            print(f"{spec.name}: ok (no digest in the manifest{'' if spec.size is None else ', size ok'}; "
                  f"sha256 {digests.sha256})")
        else:
            print(f"{spec.name}: ok")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=None,
                        help="weights cache directory (default: $REMIXER_WEIGHTS_DIR, else <repo>/weights)")
    common.add_argument("--manifest", type=Path, default=None,
                        help="manifest file (default: <repo>/weights/manifest.json)")
    parser = argparse.ArgumentParser(
        prog=CLI, description="Download, verify and list the model files of MusicGen Remixer.",
        epilog="Names are files or groups from the manifest (see `list`). `fetch` always uses the "
               "network, whatever REMIXER_OFFLINE says; the product itself honours it.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", parents=[common], help="show every file, its state on disk, and the groups",
                        description="Show every manifest file, its state on disk and license, and the groups. "
                                    "No hashing: 'verified' means a marker from an earlier check is valid.")
    fetch = commands.add_parser("fetch", parents=[common], help="download files or groups",
                                description="Download files (resuming partial downloads) and check them "
                                            "against the manifest. Present, verified files are skipped.")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="file or group names, e.g. remix-default")
    fetch.add_argument("--all", action="store_true", help="every file of the manifest")
    fetch.add_argument("--force", action="store_true", help="download again even if present")
    verify = commands.add_parser("verify", parents=[common], help="re-hash files against the manifest",
                                 description="Re-hash files and compare them with the manifest's size and "
                                             "digests. Without names, every file on disk is checked.")
    verify.add_argument("names", nargs="*", metavar="NAME", help="file or group names (default: all on disk)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the weights command line; returns the exit status (0 ok, 1 failures, 2 usage)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = Manifest.load(args.manifest)
        store = WeightsStore(args.dir, manifest=manifest, offline=False if args.command == "fetch" else None)
        command = {"list": _cmd_list, "fetch": _cmd_fetch, "verify": _cmd_verify}[args.command]
        return command(store, args)
    except (ValueError, UnknownWeightError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
