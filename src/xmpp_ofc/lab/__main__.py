"""``python -m xmpp_ofc.lab list | cleanup TAG... | cleanup --all``.

For the morning after a crash: list the lab runs that left namespaces or
state behind, and remove them by tag.  ``--all`` is meant for a machine where
no lab run is in progress (it would tear down a running one too).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xmpp_ofc.lab import netns, state


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xmpp_ofc.lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="tags with namespaces or state left behind")
    remove = commands.add_parser("cleanup", help="remove everything a tag owns")
    remove.add_argument("tags", nargs="*")
    remove.add_argument("--all", action="store_true", help="every tag that left something")
    args = parser.parse_args(argv)

    if args.command == "list":
        for tag in state.known_tags():
            recorded = state.LabState.load(tag).processes
            running = sum(process.alive() for process in recorded)
            namespaces = " ".join(state.namespaces_of(tag)) or "-"
            print(f"{tag}\tprocesses running: {running}/{len(recorded)}\tnamespaces: {namespaces}")
        return 0
    tags = state.known_tags() if args.all else args.tags
    if not tags:
        parser.error("cleanup needs TAG... or --all")
    failed = 0
    for tag in tags:
        try:
            state.cleanup(tag)
            print(f"{tag}: removed")
        except (
            OSError,
            TimeoutError,
            netns.CommandError,
        ) as error:  # report, go on with the other tags
            print(f"{tag}: {error}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
