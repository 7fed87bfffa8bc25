#!/usr/bin/env python3
"""Baselines on the exact split of a Lattice backtest.

`lattice evaluate --data DIR --dump-features DUMP` writes the rows the backtest fitted on
(DUMP/train.parquet, features at T - 2h with labels from (T - 2h, T - h]), chose its
regularisation and calibration on (DUMP/valid.parquet, features at T - h) and measured on
(DUMP/test.parquet, features at T, labels from (T, end]), plus Lattice's own test predictions.
This script fits the baselines on the same rows and features and scores everyone, Lattice
included, with one implementation of the metrics (the same definitions as
crates/lattice-models/src/metrics.rs):

  churn    lifetimes BG/NBD fitted on the test cutoff's RFM summary (unsupervised, uses only
           data up to T): scores 1 - P(alive) and P(no purchase in the horizon);
           scikit-learn logistic regression (standardised, C chosen on valid by log loss);
           LightGBM (leaves chosen on valid, early stopping on valid);
           Lattice (calibrated logistic) and Lattice's BG/NBD P(no purchase) feature alone.
  affinity per category, logistic regression and LightGBM as above, and Lattice.
  CLV      purchases in the horizon: lifetimes BG/NBD vs Lattice's BG/NBD vs actual.
  send     with --report (the JSON of `lattice evaluate --out`): hit@1 / hit@3 of the held-out
           activity against the population's best hours and each customer's own raw best
           hours, as measured by `lattice evaluate` on the same events (smoothing chosen on the
           validation window, figures from the test window).

Usage:
  python scripts/baselines.py DUMP [--report report.json] [--out baselines.json]
                              [--markdown baselines.md] [--name NAME]

Dependencies: scripts/requirements-baselines.txt. Exits 1 if a bar of issue 3 is missed
(with --strict), else 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
LR_CS = [10.0**k for k in np.arange(-4.0, 2.01, 0.5)]
LGBM_LEAVES = [4, 8, 16, 32]
MARGIN = 0.01  # a Lattice AUC may trail the best baseline by at most this much
BOOTSTRAP = 500  # paired resamples of the test customers for the bars' 95% intervals


# --------------------------------------------------------------------------------------------
# Metrics: the definitions of crates/lattice-models/src/metrics.rs
# --------------------------------------------------------------------------------------------


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Rank-sum AUC, ties given half credit; None with one class."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    pos = int(labels.sum())
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    y = np.asarray(y, dtype=bool)
    return float(np.mean(np.where(y, -np.log(p), -np.log(1 - p))))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=float)
    b = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            total += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return float(total)


def top_decile(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Positive rate among the top n/10 scores (ties by row order) and its lift."""
    scores = np.asarray(scores, dtype=float)
    y = np.asarray(y, dtype=bool)
    n = len(scores)
    hi = n // 10
    if hi == 0:
        return 0.0, 0.0
    order = np.lexsort((np.arange(n), -scores))
    rate = float(y[order[:hi]].mean())
    base = float(y.mean())
    return rate, (rate / base if base > 0 else 0.0)


def fast_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """auc() without the checks, for the bootstrap (labels hold both classes)."""
    from scipy.stats import rankdata

    pos = labels.sum()
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    return float((rankdata(scores)[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def bootstrap_gap(lattice: list, baseline: list, labels: list, n: int) -> tuple[float, float]:
    """95% interval of mean AUC(lattice) - mean AUC(baseline) over paired resamples of the
    customers (the same resample for every target)."""
    rng = np.random.default_rng(SEED)
    rows = len(labels[0])
    gaps = []
    for _ in range(n):
        i = rng.integers(0, rows, rows)
        g = [fast_auc(a[i], y[i]) - fast_auc(b[i], y[i]) for a, b, y in zip(lattice, baseline, labels)]
        if not any(math.isnan(v) for v in g):
            gaps.append(float(np.mean(g)))
    lo, hi = np.percentile(gaps, [2.5, 97.5])
    return float(lo), float(hi)


def binary_metrics(p: np.ndarray, y: np.ndarray) -> dict:
    prec, lift = top_decile(p, y)
    return {
        "n": int(len(y)),
        "base_rate": float(np.mean(y)),
        "auc": auc(p, y),
        "log_loss": log_loss(p, y),
        "brier": brier(p, y),
        "ece": ece(p, y),
        "top_decile_precision": prec,
        "top_decile_lift": lift,
    }


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def fit_logistic(xt, yt, xv, yv):
    """Standardised L2 logistic regression, C chosen on valid by log loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(xt)
    zt, zv = scaler.transform(xt), scaler.transform(xv)
    best = None
    for c in LR_CS:
        m = LogisticRegression(C=c, max_iter=5000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(zt, yt)
        loss = log_loss(m.predict_proba(zv)[:, 1], yv)
        if best is None or loss < best[0]:
            best = (loss, c, m)
    _, c, m = best
    return (lambda x: m.predict_proba(scaler.transform(x))[:, 1]), {"C": c}


def fit_lightgbm(xt, yt, xv, yv):
    """LightGBM, number of leaves chosen on valid, trees by early stopping on valid log loss."""
    import lightgbm as lgb

    best = None
    for leaves in LGBM_LEAVES:
        m = lgb.LGBMClassifier(
            n_estimators=3000,
            learning_rate=0.03,
            num_leaves=leaves,
            min_child_samples=20,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            reg_lambda=1.0,
            random_state=SEED,
            n_jobs=2,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        m.fit(
            xt,
            yt,
            eval_X=xv,
            eval_y=yv,
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(100, verbose=False)],
        )
        loss = log_loss(m.predict_proba(xv)[:, 1], yv)
        if best is None or loss < best[0]:
            best = (loss, leaves, m)
    _, leaves, m = best
    return (lambda x: m.predict_proba(x)[:, 1]), {
        "num_leaves": leaves,
        "trees": int(m.best_iteration_ or m.n_estimators),
    }


def fit_bgnbd(rfm: pd.DataFrame):
    """lifetimes' BetaGeoFitter on an RFM summary in weeks; a small penalty only if needed."""
    from lifetimes import BetaGeoFitter

    last = None
    for pen in [0.0, 0.001, 0.01, 0.1]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = BetaGeoFitter(penalizer_coef=pen).fit(
                    rfm["rfm_frequency"].to_numpy(),
                    rfm["rfm_recency"].to_numpy(),
                    rfm["rfm_T"].to_numpy(),
                )
            if all(math.isfinite(v) and v > 0 for v in m.params_.values):
                return m, pen
        except Exception as e:  # noqa: BLE001 - lifetimes raises ConvergenceError and others
            last = e
    raise RuntimeError(f"lifetimes BG/NBD did not converge: {last}")


def bgnbd_scores(m, rfm: pd.DataFrame, horizon_weeks: float) -> dict:
    """1 - P(alive), P(no purchase in the horizon) and expected purchases in it.

    lifetimes has no conditional P(X(t) = 0); it is (1 - P(alive)) + P(alive) * ((a + T) /
    (a + T + t))^(r + x) with lifetimes' fitted parameters (Fader, Hardie & Lee 2005)."""
    x = rfm["rfm_frequency"].to_numpy()
    tx = rfm["rfm_recency"].to_numpy()
    age = rfm["rfm_T"].to_numpy()
    alive = np.asarray(m.conditional_probability_alive(x, tx, age), dtype=float)
    r, alpha = float(m.params_["r"]), float(m.params_["alpha"])
    none_if_alive = np.exp(-(r + x) * np.log1p(horizon_weeks / (alpha + age)))
    p_none = np.clip((1 - alive) + alive * none_if_alive, 0.0, 1.0)
    expected = np.asarray(
        m.conditional_expected_number_of_purchases_up_to_time(horizon_weeks, x, tx, age),
        dtype=float,
    )
    return {"dead": 1 - alive, "no_purchase": p_none, "expected": expected}


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def clv_metrics(pred: np.ndarray, actual: np.ndarray) -> dict:
    return {
        "customers": int(len(pred)),
        "predicted_orders": float(pred.sum()),
        "actual_orders": float(actual.sum()),
        "mean_absolute_error": float(np.mean(np.abs(pred - actual))),
        "correlation": pearson(pred, actual),
    }


def run(dump: Path, report: Path | None, name: str, boot: int = BOOTSTRAP) -> dict:
    meta = json.loads((dump / "meta.json").read_text())
    if meta.get("format") != "lattice-backtest-features/1":
        raise SystemExit(f"{dump}/meta.json: unknown format {meta.get('format')!r}")
    feats = meta["feature_names"]
    frames = {s: pd.read_parquet(dump / f"{s}.parquet") for s in ("train", "valid", "test")}
    train, valid, test = frames["train"], frames["valid"], frames["test"]
    fit_rows = {s: frames[s]["in_fit_sample"].to_numpy() for s in ("train", "valid")}
    splits = {s["name"]: s for s in meta["splits"]}
    out: dict = {
        "name": name,
        "dump": str(dump),
        "horizon_days": meta["horizon_days"],
        "affinity_days": meta["affinity_days"],
        "cutoffs": {k: v["as_of"] for k, v in splits.items()},
        "test_window": splits["test"]["churn_label_window"],
        "features": len(feats),
    }

    # ---- churn --------------------------------------------------------------------------
    def churn_rows(df: pd.DataFrame, extra=None):
        m = df["churn_label"].notna().to_numpy()
        if extra is not None:
            m = m & extra
        return df[feats].to_numpy()[m], df["churn_label"].to_numpy()[m].astype(bool), m

    xt, yt, _ = churn_rows(train, fit_rows["train"])
    xv, yv, _ = churn_rows(valid, fit_rows["valid"])
    xs, ys, ms = churn_rows(test)
    pop = test[ms]
    churn: dict = {}
    params: dict = {}
    scores: dict = {}

    def score(name: str, p: np.ndarray) -> None:
        scores[name] = np.asarray(p, dtype=float)
        churn[name] = binary_metrics(scores[name], ys)

    bg, pen = fit_bgnbd(pop)
    bgs = bgnbd_scores(bg, pop, meta["horizon_days"] / 7.0)
    params["lifetimes_bgnbd"] = {
        **{k: float(v) for k, v in bg.params_.items()},
        "penalizer_coef": pen,
        "fitted_on": f"test cutoff RFM ({splits['test']['as_of']}), {len(pop)} customers",
    }
    score("lifetimes BG/NBD 1 − P(alive)", bgs["dead"])
    score("lifetimes BG/NBD P(no purchase)", bgs["no_purchase"])
    predict, params["logistic_churn"] = fit_logistic(xt, yt, xv, yv)
    score("scikit-learn logistic regression", predict(xs))
    predict, params["lightgbm_churn"] = fit_lightgbm(xt, yt, xv, yv)
    score("LightGBM", predict(xs))
    score("Lattice BG/NBD P(no purchase) alone", pop["bgnbd_p_no_purchase"].to_numpy())
    score("Lattice churn model", pop["lattice_churn_probability"].to_numpy())
    out["churn"] = churn
    baselines = [
        k for k in churn if not k.startswith("Lattice") and churn[k]["auc"] is not None
    ]
    best = max(baselines, key=lambda k: churn[k]["auc"])
    lat = churn["Lattice churn model"]["auc"]
    out["churn_bar"] = {
        "lattice_auc": lat,
        "best_baseline": best,
        "best_baseline_auc": churn[best]["auc"],
        "margin": MARGIN,
        "passed": lat is not None and lat >= churn[best]["auc"] - MARGIN,
        "gap": lat - churn[best]["auc"],
        "gap_ci95": bootstrap_gap(
            [scores["Lattice churn model"]], [scores[best]], [ys], boot
        ),
    }

    # ---- affinity -----------------------------------------------------------------------
    cats = meta["categories"]
    if cats:
        x_all = {s: frames[s][feats].to_numpy() for s in ("train", "valid", "test")}
        rows = []
        preds: dict = {"lattice": {}, "logistic": {}, "lightgbm": {}, "labels": {}}
        for c in cats:
            col = f"affinity_{c['slug']}"
            yt_c = train[col].to_numpy()[fit_rows["train"]]
            yv_c = valid[col].to_numpy()[fit_rows["valid"]]
            ys_c = test[col].to_numpy()
            row = {
                "category": c["name"],
                "lattice_model": c["lattice_model"],
                "train_positives": int(yt_c.sum()),
                "test_positives": int(ys_c.sum()),
            }
            preds["labels"][c["name"]] = ys_c
            preds["lattice"][c["name"]] = test[f"lattice_affinity_{c['slug']}"].to_numpy()
            row["lattice"] = binary_metrics(preds["lattice"][c["name"]], ys_c)
            if 0 < yt_c.sum() < len(yt_c) and 0 < yv_c.sum() < len(yv_c):
                xt_c = x_all["train"][fit_rows["train"]]
                xv_c = x_all["valid"][fit_rows["valid"]]
                p, row["logistic_params"] = fit_logistic(xt_c, yt_c, xv_c, yv_c)
                preds["logistic"][c["name"]] = p(x_all["test"])
                row["logistic"] = binary_metrics(preds["logistic"][c["name"]], ys_c)
                p, row["lightgbm_params"] = fit_lightgbm(xt_c, yt_c, xv_c, yv_c)
                preds["lightgbm"][c["name"]] = p(x_all["test"])
                row["lightgbm"] = binary_metrics(preds["lightgbm"][c["name"]], ys_c)
            rows.append(row)
        # Means over the categories where every model has an AUC.
        scored = [
            r
            for r in rows
            if all(r.get(k, {}).get("auc") is not None for k in ("lattice", "logistic", "lightgbm"))
        ]
        means = {
            k: (float(np.mean([r[k]["auc"] for r in scored])) if scored else None)
            for k in ("logistic", "lightgbm", "lattice")
        }
        out["affinity"] = {"categories": rows, "mean_auc": means, "categories_in_mean": len(scored)}
        if scored:
            b = max(("logistic", "lightgbm"), key=lambda k: means[k])
            out["affinity_bar"] = {
                "lattice_mean_auc": means["lattice"],
                "best_baseline": b,
                "best_baseline_mean_auc": means[b],
                "margin": MARGIN,
                "passed": means["lattice"] >= means[b] - MARGIN,
                "gap": means["lattice"] - means[b],
                "gap_ci95": bootstrap_gap(
                    [preds["lattice"][r["category"]] for r in scored],
                    [preds[b][r["category"]] for r in scored],
                    [preds["labels"][r["category"]] for r in scored],
                    boot,
                ),
            }

    # ---- CLV: purchases in the horizon --------------------------------------------------
    # BG/NBD predicts orders (distinct order ids, as its frequency counts them). The label's
    # `purchases_in_horizon` counts the same orders; the two must agree (cross-check).
    actual = pop["orders_in_horizon"].to_numpy()
    out["clv"] = {
        "lifetimes BG/NBD": clv_metrics(bgs["expected"], actual),
        "Lattice BG/NBD": clv_metrics(pop["bgnbd_expected_purchases"].to_numpy(), actual),
    }
    out["clv_label_orders_in_horizon"] = float(pop["purchases_in_horizon"].sum())
    lat_bg = meta.get("clv_at_test_cutoff", {}).get("bgnbd")
    if lat_bg:
        params["lattice_bgnbd"] = lat_bg
    out["params"] = params

    # ---- send time and a cross-check against `lattice evaluate` -------------------------
    if report is not None:
        rep = json.loads(report.read_text())
        st = rep.get("send_time")
        if st:
            out["send_time"] = {
                "heldout": st["heldout"],
                "heldout_events": st["n_heldout"],
                "hyper": st["hyper"],
                "model": st["model"],
                "population": st["baseline"],
                "own": st["own"],
            }
            # What the score file's top3_hours_of_day serves, against both baselines.
            lat = st["model"]["hour_of_day_hit_at_3"]
            best = max(st["baseline"]["hour_of_day_hit_at_3"], st["own"]["hour_of_day_hit_at_3"])
            out["send_time_bar"] = {
                "lattice_hour_of_day_hit_at_3": lat,
                "population_hour_of_day_hit_at_3": st["baseline"]["hour_of_day_hit_at_3"],
                "own_hour_of_day_hit_at_3": st["own"]["hour_of_day_hit_at_3"],
                "passed": lat > best,
            }
            if st["baseline"]["hour_of_day_hit_at_3"] >= 1.0:
                # Every held-out event at one hour of day: dates without times (CDNOW).
                out["send_time_bar"]["passed"] = None
        mine = churn["Lattice churn model"]["auc"]
        theirs = rep["churn"]["auc"]
        out["cross_check"] = {
            "lattice_evaluate_churn_auc": theirs,
            "this_script_churn_auc": mine,
            "agree": theirs is not None and mine is not None and abs(theirs - mine) < 1e-6,
        }
        if not out["cross_check"]["agree"]:
            print(
                f"warning: lattice evaluate reports churn AUC {theirs}, this script computes {mine} "
                "from the dump: the dump and the report are not from the same run",
                file=sys.stderr,
            )
    return out


def fmt(v, digits=3) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}"


def markdown(r: dict) -> str:
    lines = [
        f"### {r['name']}",
        "",
        f"Cutoffs: train {r['cutoffs']['train']}, valid {r['cutoffs']['valid']}, "
        f"test {r['cutoffs']['test']}; test labels {r['test_window']}; "
        f"{r['features']} features.",
        "",
        f"**Churn** (no purchase in {r['horizon_days']} days), "
        f"{next(iter(r['churn'].values()))['n']} customers, "
        f"base rate {next(iter(r['churn'].values()))['base_rate']:.3f}",
        "",
        "| model | AUC | log loss | Brier | ECE | top-decile precision | top-decile lift |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, m in r["churn"].items():
        bold = "**" if k == "Lattice churn model" else ""
        lines.append(
            f"| {bold}{k}{bold} | {fmt(m['auc'])} | {fmt(m['log_loss'], 4)} | {fmt(m['brier'], 4)} "
            f"| {fmt(m['ece'], 4)} | {fmt(m['top_decile_precision'])} | {fmt(m['top_decile_lift'], 2)} |"
        )
    cb = r["churn_bar"]
    lines += [
        "",
        f"Bar: Lattice churn AUC {fmt(cb['lattice_auc'])} ≥ best baseline ({cb['best_baseline']}) "
        f"{fmt(cb['best_baseline_auc'])} − {cb['margin']} → **{'met' if cb['passed'] else 'MISSED'}** "
        f"(gap {cb['gap']:+.3f}, paired-bootstrap 95% interval "
        f"{cb['gap_ci95'][0]:+.3f} .. {cb['gap_ci95'][1]:+.3f})",
    ]
    if "affinity" in r:
        a = r["affinity"]
        lines += [
            "",
            f"**Affinity** (a purchase of the category in {r['affinity_days']} days), test AUC",
            "",
            "| category | Lattice model | test positives | Lattice | logistic regression | LightGBM |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for c in a["categories"]:
            lines.append(
                f"| {c['category']} | {c['lattice_model']} | {c['test_positives']} "
                f"| {fmt(c['lattice']['auc'])} | {fmt(c.get('logistic', {}).get('auc'))} "
                f"| {fmt(c.get('lightgbm', {}).get('auc'))} |"
            )
        mm = a["mean_auc"]
        lines.append(
            f"| **mean** ({a['categories_in_mean']} categories) | | | **{fmt(mm['lattice'])}** "
            f"| {fmt(mm['logistic'])} | {fmt(mm['lightgbm'])} |"
        )
        if "affinity_bar" in r:
            ab = r["affinity_bar"]
            lines += [
                "",
                f"Bar: Lattice mean AUC {fmt(ab['lattice_mean_auc'])} ≥ best baseline "
                f"({ab['best_baseline']}) {fmt(ab['best_baseline_mean_auc'])} − {ab['margin']} → "
                f"**{'met' if ab['passed'] else 'MISSED'}** (gap {ab['gap']:+.3f}, paired-bootstrap "
                f"95% interval {ab['gap_ci95'][0]:+.3f} .. {ab['gap_ci95'][1]:+.3f})",
            ]
    else:
        lines += ["", "**Affinity**: no categories in this data."]
    lines += [
        "",
        f"**Orders in {r['horizon_days']} days** (churn population; actual = distinct orders; "
        f"the label query counts {r['clv_label_orders_in_horizon']:.0f})",
        "",
        "| model | customers | predicted orders | actual orders | MAE | correlation |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, m in r["clv"].items():
        lines.append(
            f"| {k} | {m['customers']} | {m['predicted_orders']:.0f} | {m['actual_orders']:.0f} "
            f"| {m['mean_absolute_error']:.3f} | {m['correlation']:.3f} |"
        )
    lt, lb = r["params"]["lifetimes_bgnbd"], r["params"].get("lattice_bgnbd")
    if lb:
        lines += [
            "",
            "BG/NBD fitted at the test cutoff (weeks):",
            "",
            "| fit | r | α | a | b |",
            "|---|---:|---:|---:|---:|",
            f"| lifetimes BetaGeoFitter (penalizer {lt['penalizer_coef']}) | {lt['r']:.4f} "
            f"| {lt['alpha']:.4f} | {lt['a']:.4f} | {lt['b']:.4f} |",
            f"| Lattice | {lb['r']:.4f} | {lb['alpha']:.4f} | {lb['a']:.4f} | {lb['b']:.4f} |",
        ]
    if "send_time" in r:
        s = r["send_time"]
        rows = [("Lattice", s["model"]), ("population best", s["population"]), ("own raw best", s["own"])]
        hyper = ", ".join(
            f"{ch} κ {h['kappa']:g} β {h['beta']:g} γ {h['smoothing']:g}" for ch, h in s["hyper"].items()
        )
        lines += [
            "",
            f"**Send time**, {s['heldout_events']} held-out events ({s['heldout'].replace('_', ' ')}); "
            f"smoothing chosen on the validation window: {hyper}",
            "",
            "| | hour-of-week hit@1 | hour-of-week hit@3 | hour-of-day hit@1 | hour-of-day hit@3 |",
            "|---|---:|---:|---:|---:|",
        ] + [
            f"| {name} | {m['hour_of_week_hit_at_1']:.3f} | {m['hour_of_week_hit_at_3']:.3f} "
            f"| {m['hour_of_day_hit_at_1']:.3f} | {m['hour_of_day_hit_at_3']:.3f} |"
            for name, m in rows
        ]
        sb = r["send_time_bar"]
        lines += [
            "",
            f"Bar: hour-of-day hit@3 {sb['lattice_hour_of_day_hit_at_3']:.3f} > population "
            f"{sb['population_hour_of_day_hit_at_3']:.3f} and own raw best "
            f"{sb['own_hour_of_day_hit_at_3']:.3f} → **"
            + ("n/a: every event at one hour of day (dates, not times)" if sb["passed"] is None
               else "met" if sb["passed"] else "MISSED") + "**",
        ]
    elif "cross_check" in r:
        lines += ["", "**Send time**: no activity in the test window."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump", type=Path, help="directory written by lattice evaluate --dump-features")
    ap.add_argument("--report", type=Path, help="JSON of lattice evaluate --out, same run")
    ap.add_argument("--out", type=Path, help="write the results as JSON")
    ap.add_argument("--markdown", type=Path, help="write the tables as Markdown")
    ap.add_argument("--name", help="title of the tables (default: the dump directory)")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a bar is missed")
    ap.add_argument(
        "--bootstrap", type=int, default=BOOTSTRAP, help="resamples for the bars' intervals"
    )
    args = ap.parse_args()
    np.random.seed(SEED)
    r = run(args.dump, args.report, args.name or args.dump.name, args.bootstrap)
    md = markdown(r)
    print(md)
    if args.out:
        args.out.write_text(json.dumps(r, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(md)
    bars = [r.get(k) for k in ("churn_bar", "affinity_bar", "send_time_bar")]
    if args.strict and any(b is not None and b["passed"] is False for b in bars):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
