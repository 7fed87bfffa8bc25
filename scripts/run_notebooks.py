#!/usr/bin/env python3
"""Execute every notebook in notebooks/ top to bottom; exit non-zero on any error.

Builds nothing: the notebooks call the `lattice` binary named by LATTICE_BIN (default
$CARGO_TARGET_DIR/release/lattice, with CARGO_TARGET_DIR defaulting to ~/.cache/lattice-target).
Run it with the notebooks' virtual environment (notebooks/requirements.txt):

    ~/.venvs/lattice-notebooks/bin/python scripts/run_notebooks.py            # check
    ~/.venvs/lattice-notebooks/bin/python scripts/run_notebooks.py --inplace  # refresh outputs

By default each notebook is executed from a copy and the result written to a temporary
directory (kept with --keep, else removed), so the committed files are not touched; with
--inplace the executed notebooks, outputs included, replace the committed ones. Either way
the kernel's working directory is notebooks/, as when a person opens them in Jupyter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def lattice_bin() -> Path:
    if os.environ.get("LATTICE_BIN"):
        return Path(os.environ["LATTICE_BIN"]).resolve()
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/lattice-target"))
    return (Path(target) / "release" / "lattice").resolve()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path,
                    help="notebooks to run (default: every notebooks/*.ipynb)")
    ap.add_argument("--inplace", action="store_true",
                    help="write the executed notebooks, with outputs, over the committed ones")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per cell (default 300)")
    ap.add_argument("--keep", action="store_true", help="keep the executed copies and say where")
    args = ap.parse_args()

    binary = lattice_bin()
    if not os.access(binary, os.X_OK):
        print(f"error: no lattice binary at {binary}: build it with "
              "`cargo build --release -p lattice` or set LATTICE_BIN", file=sys.stderr)
        return 2
    # The kernels inherit this environment: the notebooks read LATTICE_BIN.
    os.environ["LATTICE_BIN"] = str(binary)
    # Plots render to PNG with the Agg backend whatever the caller's display.
    os.environ.pop("MPLBACKEND", None)

    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    if not paths:
        print(f"error: no notebooks in {NOTEBOOKS}", file=sys.stderr)
        return 2
    out_dir = Path(tempfile.mkdtemp(prefix="lattice-notebooks-"))
    # The kernels' temporary files (each notebook's scratch directory, a server log) go under
    # one directory removed at the end, even when a failing kernel is stopped before its
    # clean-up hooks run.
    scratch = Path(tempfile.mkdtemp(prefix="lattice-notebooks-tmp-"))
    os.environ["TMPDIR"] = str(scratch)
    failed = []
    started = time.monotonic()
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        # IPC sockets in the scratch directory rather than TCP on localhost.
        km = KernelManager(kernel_name="python3", transport="ipc",
                           ip=str(scratch / f"kernel-{path.stem}"))
        client = NotebookClient(
            nb,
            km=km,
            timeout=args.timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
            record_timing=False,  # no execution timestamps in committed outputs
        )
        t = time.monotonic()
        error = None
        try:
            client.execute()
        except Exception as e:  # a cell failed or timed out, the kernel died or did not start
            error = e
        finally:
            # nbclient leaves a kernel it was handed running: shut it down here, politely, so
            # that its atexit hooks run (notebook 3 stops its server in one).
            if client.kc is not None:
                client.kc.stop_channels()
            if km.has_kernel:
                km.shutdown_kernel(now=False)
        secs = time.monotonic() - t
        target = path if args.inplace and error is None else out_dir / path.name
        nbformat.write(nb, target)
        if error is None:
            print(f"ok    {shown(path)} ({secs:.1f} s)")
        else:
            failed.append(path)
            print(f"FAIL  {shown(path)} ({secs:.1f} s): executed copy with the error "
                  f"in {target}\n{error}", file=sys.stderr)
    total = time.monotonic() - started
    shutil.rmtree(scratch, ignore_errors=True)
    if failed or args.keep:
        print(f"executed copies: {out_dir}")
    else:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(f"{len(paths)} notebook(s) in {total:.1f} s with {binary}")
    print(f"notebooks: {len(paths) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
