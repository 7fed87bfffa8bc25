#!/usr/bin/env python3
"""Delete stale test and bench executables from a shared cargo target directory.

Every rebuild of a test binary (about 0.5-0.7 GB each here, DataFusion linked in) leaves the
previous one behind under a new hash; on a small disk a few days of work fill it. This keeps
the newest executable of each name in <target>/release/deps and deletes the older ones. Cargo
rebuilds anything it still needs.

    python3 scripts/prune_target.py [--dry-run] [TARGET_DIR]

TARGET_DIR defaults to $CARGO_TARGET_DIR, then ~/.cache/lattice-target.
"""

import argparse
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

HASHED = re.compile(r"([a-z0-9_]+)-([0-9a-f]{16})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", nargs="?", type=Path)
    ap.add_argument("--dry-run", action="store_true", help="only list what would go")
    args = ap.parse_args()
    target = args.target or Path(
        os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/lattice-target")
    )
    deps = target / "release" / "deps"
    if not deps.is_dir():
        print(f"{deps}: not a directory (pass the cargo target directory)", file=sys.stderr)
        return 2
    by_name = defaultdict(list)
    for f in deps.iterdir():
        m = HASHED.fullmatch(f.name)
        if m and f.is_file() and os.access(f, os.X_OK):
            by_name[m.group(1)].append(f)
    freed = 0
    for files in by_name.values():
        files.sort(key=lambda f: f.stat().st_mtime, reverse=True)
        for old in files[1:]:
            freed += old.stat().st_size
            if args.dry_run:
                print(f"would delete {old}")
            else:
                old.unlink()
    verb = "would free" if args.dry_run else "freed"
    print(f"{verb} {freed / 1e9:.1f} GB in {deps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
