use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lattice_catalog::settings::Settings;
use lattice_data::output::{
    FEATURE_DUMP_DIR, OutputDir, OutputFile, REPORT_FILE, check_dir, check_file,
};
use lattice_features::{History, load_profiles};
use lattice_models::dump::write_backtest_features;
use lattice_models::pipeline::{TrainConfig, backtest};

#[derive(clap::Args)]
pub struct Args {
    /// Data directory (see docs/data-contract.md).
    #[arg(long)]
    data: PathBuf,
    /// Churn horizon in days: churn = no purchase in the next N days.
    #[arg(long, default_value_t = 60)]
    horizon_days: i64,
    /// Affinity window in days.
    #[arg(long, default_value_t = 28)]
    affinity_days: i64,
    /// What BG/NBD counts as a repeat purchase: `purchase-days` (distinct UTC days after the
    /// first, as Fader, Hardie and Lee and `lifetimes` count) or `orders`.
    #[arg(long, default_value = "purchase-days")]
    clv_frequency: lattice_models::pipeline::RepeatCount,
    /// Write the full report (reliability tables, deciles, per-category metrics) as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the backtest's training, validation and test rows (features, labels, BG/NBD
    /// summaries, and Lattice's test predictions) to DIR/{train,valid,test}.parquet and
    /// DIR/meta.json, for `scripts/baselines.py`.
    #[arg(long, value_name = "DIR")]
    dump_features: Option<PathBuf>,
    /// Replace --out and --dump-features even when they are not earlier outputs.
    #[arg(long)]
    force: bool,
    /// Run the aggregation and label queries on a cluster: `df://HOST:PORT` (a `lattice
    /// cluster scheduler`) or `standalone` (a scheduler and executor in this process). Every
    /// node must see --data at the same path (docs/scale-out.md).
    #[arg(long, value_name = "df://HOST:PORT|standalone")]
    cluster: Option<String>,
}

fn f(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Refuse before the backtest, not after it.
    if let Some(out) = &args.out {
        check_file(out, REPORT_FILE, args.force)?;
    }
    if let Some(dir) = &args.dump_features {
        check_dir(dir, FEATURE_DUMP_DIR, args.force)?;
    }
    let settings = Settings::load_or_default(&args.data.join("lattice.toml"))?;
    let cfg = TrainConfig {
        horizon_days: args.horizon_days,
        affinity_days: args.affinity_days,
        clv_frequency: args.clv_frequency,
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let (report, dump) = rt.block_on(async {
        let cluster = super::cluster::session(args.cluster.as_deref()).await?;
        let history = History::open_on(&args.data, cluster).await?;
        let profiles = load_profiles(&args.data)?;
        let (fitted, report) = backtest(&history, &profiles, &settings, &cfg, None).await?;
        let dump = match &args.dump_features {
            Some(dir) => {
                let output = OutputDir::create(dir, FEATURE_DUMP_DIR, args.force)?;
                let meta = write_backtest_features(output.path(), &history, &profiles, &fitted)
                    .await
                    .with_context(|| format!("writing the feature dump to {}", dir.display()))?;
                output.commit()?;
                Some(meta)
            }
            None => None,
        };
        anyhow::Ok((report, dump))
    })?;
    let c = &report.churn;
    println!(
        "backtest: fitted with data up to {}, measured on {}",
        report.fit_cutoff, report.test_window
    );
    println!();
    println!(
        "churn (no purchase in {} days), {} customers, base rate {:.3}",
        cfg.horizon_days, c.n, c.base_rate
    );
    println!(
        "  AUC {}  log loss {:.4}  Brier {:.4}  ECE {:.4}  top-decile precision {:.3} (lift {:.2})  alpha {}  {}",
        f(c.auc),
        c.log_loss,
        c.brier,
        c.ece,
        c.top_decile_precision,
        c.top_decile_lift,
        report.churn_alpha,
        report.churn_calibration
    );
    println!(
        "  BG/NBD P(no purchase) alone: AUC {}",
        f(report.churn_auc_bgnbd_only)
    );
    println!();
    println!(
        "affinity (purchase in the category within {} days): mean AUC {}",
        cfg.affinity_days,
        f(report.affinity_mean_auc)
    );
    println!(
        "  {:<20} {:>9} {:>11} {:>9} {:>7} {:>7} {:>8}",
        "category", "model", "calibration", "positives", "AUC", "ECE", "top lift"
    );
    for a in &report.affinity {
        println!(
            "  {:<20} {:>9} {:>11} {:>9} {:>7} {:>7.4} {:>8.2}",
            a.category,
            a.model,
            a.calibration.as_deref().unwrap_or("-"),
            a.positives,
            f(a.metrics.auc),
            a.metrics.ece,
            a.metrics.top_decile_lift
        );
    }
    let v = &report.clv;
    println!();
    println!(
        "purchases in {} days (BG/NBD), {} customers: predicted {:.0}, actual {:.0}, MAE {:.3}, correlation {:.3}",
        cfg.horizon_days,
        v.customers,
        v.predicted_orders,
        v.actual_orders,
        v.mean_absolute_error,
        v.correlation
    );
    if let Some(st) = &report.send_time {
        println!();
        println!(
            "send time, {} held-out engagements (kappa {}, beta {}): hour-of-week hit@1 {:.3} hit@3 {:.3} \
             (population best: {:.3} / {:.3}); hour-of-day hit@3 {:.3} (population {:.3})",
            st.n_heldout,
            st.kappa,
            st.beta,
            st.model.hour_of_week_hit_at_1,
            st.model.hour_of_week_hit_at_3,
            st.baseline.hour_of_week_hit_at_1,
            st.baseline.hour_of_week_hit_at_3,
            st.model.hour_of_day_hit_at_3,
            st.baseline.hour_of_day_hit_at_3
        );
    }
    if let Some(out) = &args.out {
        let mut file = OutputFile::create(out, REPORT_FILE, args.force)?;
        file.write_all(serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        file.commit()?;
        println!("report written to {}", out.display());
    }
    if let (Some(dir), Some(meta)) = (&args.dump_features, &dump) {
        let rows: Vec<String> = meta
            .splits
            .iter()
            .map(|s| format!("{} {} rows as of {}", s.name, s.rows, s.as_of))
            .collect();
        println!(
            "backtest rows written to {} ({})",
            dir.display(),
            rows.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
