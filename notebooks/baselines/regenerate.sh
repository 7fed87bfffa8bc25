#!/usr/bin/env bash
# Writes notebooks/baselines/{sample,cdnow}-baselines.json, which 02-evaluate-models.ipynb sets
# beside Lattice's own backtest. These are the commands of docs/model-quality.md
# ("Reproducing"): `lattice evaluate --dump-features` on each dataset, then
# scripts/baselines.py (lifetimes, scikit-learn, LightGBM) on the dumped split.
#
# The baselines need scripts/requirements-baselines.txt, which CI does not install (LightGBM
# and friends are heavy), so the results are committed. Rerun this after a change to the
# features, the split or the models; the notebook says so when its Lattice numbers no longer
# match the run recorded here (cross_check.lattice_evaluate_churn_auc).
#
#   python3 -m venv ~/.venvs/baselines
#   ~/.venvs/baselines/bin/pip install -r scripts/requirements-baselines.txt
#   notebooks/baselines/regenerate.sh
#
# Environment: LATTICE_BIN (default $CARGO_TARGET_DIR/release/lattice, CARGO_TARGET_DIR
# defaulting to ~/.cache/lattice-target), BASELINES_PYTHON (default ~/.venvs/baselines/bin/python).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
L="${LATTICE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/lattice-target}/release/lattice}"
PY="${BASELINES_PYTHON:-$HOME/.venvs/baselines/bin/python}"
OUT="$ROOT/notebooks/baselines"
O="$(mktemp -d)"
trap 'rm -rf "$O"' EXIT

cd "$ROOT"
"$L" evaluate --data training-data/sample --out "$O/sample-report.json" --dump-features "$O/sample"
"$L" evaluate --data training-data/cdnow --horizon-days 90 --out "$O/cdnow-report.json" --dump-features "$O/cdnow"
# Relative dump paths, so the JSON names no temporary directory.
cd "$O"
"$PY" "$ROOT/scripts/baselines.py" sample --report sample-report.json \
    --out "$OUT/sample-baselines.json" --name "Synthetic sample"
"$PY" "$ROOT/scripts/baselines.py" cdnow --report cdnow-report.json \
    --out "$OUT/cdnow-baselines.json" --name "CDNOW"
