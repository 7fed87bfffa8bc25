"""How well a trained model recovers the synthetic world's planted truth.

    python scripts/truth_recovery.py MODEL_DIR DATA_DIR

MODEL_DIR is written by `lattice train --data DATA_DIR`; DATA_DIR by `lattice generate` (it
has truth.parquet). Compares the model's snapshot (scores at the end of the data) with each
customer's planted parameters and prints a Markdown table. Needs pyarrow and numpy
(scripts/requirements-baselines.txt).
"""

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def rank(x):
    r = np.empty(len(x))
    r[np.argsort(x, kind="mergesort")] = np.arange(len(x))
    return r


def spearman(a, b):
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


def auc(score, label):
    label = np.asarray(label, bool)
    r = rank(score) + 1
    n1, n0 = label.sum(), (~label).sum()
    return float((r[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main(model: Path, data: Path) -> None:
    snap = pq.read_table(model / "snapshot.parquet").to_pandas().set_index("customer_id")
    truth = pq.read_table(data / "truth.parquet").to_pandas().set_index("customer_id")
    df = snap.merge(truth, left_index=True, right_index=True, suffixes=("", "_truth"))
    rows = []
    alive = df["alive_at_end"].to_numpy()
    true_rate = df["true_purchase_rate_per_year"].to_numpy() * alive
    rows.append(("expected purchases vs true purchase rate (0 if dropped out), Spearman",
                 spearman(df["expected_purchases"].to_numpy(), true_rate), len(df)))
    rows.append(("P(alive) vs alive at the end, AUC", auc(df["p_alive"].to_numpy(), alive), len(df)))
    rows.append(("churn probability vs dropped out by the end, AUC",
                 auc(df["churn_probability"].to_numpy(), ~alive), len(df)))
    true_value = true_rate * df["true_mean_spend"].to_numpy()
    rows.append(("CLV vs true rate × mean spend, Spearman", spearman(df["clv"].to_numpy(), true_value), len(df)))

    cats = [c[len("affinity_"):] for c in snap.columns if c.startswith("affinity_")]
    buyers = df[df["has_purchase"] > 0]
    aff = buyers[[f"affinity_{c}" for c in cats]].to_numpy()
    top = np.array(cats)[aff.argmax(axis=1)]
    hit = float((top == buyers["true_top_category"].to_numpy()).mean())
    popular = buyers["true_top_category"].value_counts().index[0]
    base = float((buyers["true_top_category"] == popular).mean())
    rows.append((f"top affinity = true favourite category (buyers; most common category: {base:.3f})", hit, len(buyers)))

    best = df["best_hour_of_week"].to_numpy()
    true_top3 = df["true_top3_hours_of_week"].to_numpy()
    in_top3 = np.array([b in set(t) for b, t in zip(best, true_top3)])
    pop_best = np.bincount(best, minlength=168).argmax()
    pop_hit = np.array([pop_best in set(t) for t in true_top3]).mean()
    rows.append((f"best hour of week in the true top 3 (one population-wide hour: {pop_hit:.3f})",
                 float(in_top3.mean()), len(df)))
    engaged = df["engagement_counts"].apply(lambda c: sum(c) if c is not None else 0).to_numpy() >= 20
    rows.append(("the same, customers with 20+ engagements", float(in_top3[engaged].mean()), int(engaged.sum())))
    hod = (df["best_hour_of_day"].to_numpy() == df["true_best_hour_of_day"].to_numpy()).mean()
    rows.append(("best hour of day = true best hour of day", float(hod), len(df)))

    print("| truth recovered | value | customers |\n|---|---:|---:|")
    for name, v, n in rows:
        print(f"| {name} | {v:.3f} | {n:,} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
