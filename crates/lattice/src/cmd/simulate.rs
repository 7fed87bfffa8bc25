//! `lattice simulate`: the learning policies in a world with planted truth (lattice_learn::sim).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lattice_data::output::{
    OutputDir, OutputFile, REPORT_FILE, SIM_LOGS_DIR, check_dir, check_file,
};
use lattice_learn::sim::{self, COVERAGE_MIN_CONTACTS, Config, OpeReport, Policy, Report};

#[derive(clap::Args)]
pub struct Args {
    /// Customers in the simulated programme.
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Days simulated; every customer gets a decision every 7 days.
    #[arg(long, default_value_t = 60)]
    days: u32,
    /// Random seed of the world and its truth; the same seed gives the same figures.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Also write the whole report as JSON (regret by day, every learned cell), for notebooks.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write Thompson's logged decisions (`logs.parquet`) and the frozen greedy policy's
    /// choices for them (`policy.parquet`) here, in `lattice policy-eval`'s format.
    #[arg(long)]
    logs_out: Option<PathBuf>,
    /// Replace --json and --logs-out even when they do not look like earlier outputs.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Before the run: a refusal should not wait for the simulation.
    if let Some(path) = &args.json {
        check_file(path, REPORT_FILE, args.force)?;
    }
    if let Some(dir) = &args.logs_out {
        check_dir(dir, SIM_LOGS_DIR, args.force)?;
    }
    let config = Config {
        customers: args.customers,
        days: args.days,
        seed: args.seed,
    };
    let report = sim::run(&config)?;
    print!("{}", render(&report));
    if let Some(path) = &args.json {
        let mut file = OutputFile::create(path, REPORT_FILE, args.force)?;
        std::io::Write::write_all(&mut file, serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.commit()?;
        println!("report written to {}", path.display());
    }
    if let Some(dir) = &args.logs_out {
        let output = OutputDir::create(dir, SIM_LOGS_DIR, args.force)?;
        write_logs(&report, output.path())?;
        output.commit()?;
        println!(
            "thompson's logs and the frozen greedy policy written to {}/logs.parquet and \
             {}/policy.parquet",
            dir.display(),
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Thompson's logged decisions and frozen greedy's choices, in `policy-eval`'s format, into
/// `dir` (the temporary directory of the output).
fn write_logs(r: &Report, dir: &std::path::Path) -> anyhow::Result<()> {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use lattice_data::write::ParquetFile;

    let log = r
        .policy(Policy::Thompson)
        .map(|p| p.log.as_slice())
        .unwrap_or_default();
    let ids: Vec<&str> = log.iter().map(|d| d.decision_id.as_str()).collect();
    let name = |a: usize| r.action_ids.get(a).map_or("?", String::as_str);
    let text = |v: Vec<&str>| Arc::new(StringArray::from(v)) as ArrayRef;
    let num = |v: Vec<f64>| Arc::new(Float64Array::from(v)) as ArrayRef;
    let field = |n: &str, t: DataType| Field::new(n, t, false);

    let schema = Arc::new(Schema::new(vec![
        field("decision_id", DataType::Utf8),
        field("action", DataType::Utf8),
        field("probability", DataType::Float64),
        field("reward", DataType::Float64),
        field("segment", DataType::Utf8),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            text(ids.clone()),
            text(log.iter().map(|d| name(d.action)).collect()),
            num(log.iter().map(|d| d.probability).collect()),
            num(log.iter().map(|d| d.reward).collect()),
            text(
                log.iter()
                    .map(|d| r.segment_names.get(d.segment.0).map_or("?", String::as_str))
                    .collect(),
            ),
        ],
    )?;
    let mut f = ParquetFile::create(&dir.join("logs.parquet"), schema)?;
    f.write(&batch)?;
    f.finish()?;

    let schema = Arc::new(Schema::new(vec![
        field("decision_id", DataType::Utf8),
        field("action", DataType::Utf8),
        field("probability", DataType::Float64),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            text(ids),
            text(r.frozen_choices.iter().map(|&a| name(a)).collect()),
            num(vec![1.0; r.frozen_choices.len()]),
        ],
    )?;
    let mut f = ParquetFile::create(&dir.join("policy.parquet"), schema)?;
    f.write(&batch)?;
    f.finish()?;
    Ok(())
}

fn render(r: &Report) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "simulated {} customers for {} days (seed {}): {} actions × {} segments (tier × churn band), \
         a decision per customer every 7 days",
        thousands(r.customers as f64),
        r.days,
        r.seed,
        r.actions,
        r.segments
    ));
    line(String::new());
    line(format!(
        "{:<14} {:>10} {:>28} {:>12} {:>11} {:>14}",
        "policy", "decisions", "reward per decision [95%]", "regret", "vs static", "best action*"
    ));
    let static_regret = r.policy(Policy::Static).map_or(f64::NAN, |p| p.regret);
    for p in &r.policies {
        line(format!(
            "{:<14} {:>10} {:>28} {:>12} {:>10.2}× {:>13.1}%",
            p.policy.as_str(),
            thousands(p.decisions as f64),
            format!(
                "{:.3} [{:.3}, {:.3}]",
                p.reward_per_decision, p.reward_per_decision_low, p.reward_per_decision_high
            ),
            thousands(p.regret),
            p.regret / static_regret,
            100.0 * p.best_action_share_last_week
        ));
    }
    line("* share of the last 7 days' decisions that took the true best eligible action".into());
    line(String::new());
    for p in &r.policies {
        if matches!(p.policy, Policy::Greedy | Policy::Thompson) {
            line(format!(
                "learned response rates ({}): {} of {} action × segment cells with ≥ {} contacts \
                 hold the true rate in their 95% interval ({:.1}%)",
                p.policy.as_str(),
                p.cells_covered,
                p.cells_checked,
                COVERAGE_MIN_CONTACTS,
                100.0 * p.cells_covered as f64 / p.cells_checked.max(1) as f64
            ));
        }
    }
    line(String::new());
    for o in [&r.ope, &r.ope_static] {
        ope_lines(o, &mut line);
    }
    line(String::new());
    let thompson = r.policy(Policy::Thompson);
    let ratio = thompson.map_or(f64::NAN, |t| t.regret / static_regret);
    let coverage = thompson.map_or(0.0, |t| {
        t.cells_covered as f64 / t.cells_checked.max(1) as f64
    });
    let dr_holds = r
        .ope
        .evaluation
        .as_ref()
        .is_ok_and(|e| e.dr.contains(r.ope.measured));
    let yes = |b: bool| if b { "met" } else { "NOT met" };
    line(format!(
        "bars: Thompson regret ≤ 0.5 × static: {} ({:.2}×); coverage ≥ 90% of cells with ≥ {} \
         contacts: {} ({:.1}%); DR interval holds the measured value: {}",
        yes(ratio <= 0.5),
        ratio,
        COVERAGE_MIN_CONTACTS,
        yes(coverage >= 0.9),
        100.0 * coverage,
        yes(dr_holds)
    ));
    out
}

fn ope_lines(o: &OpeReport, line: &mut impl FnMut(String)) {
    match &o.evaluation {
        Ok(e) => {
            line(format!(
                "off-policy: {} estimated from {}'s logs ({} decisions, effective sample size {}, \
                 {} where it would have done the same)",
                o.target.as_str(),
                o.logged_by.as_str(),
                thousands(e.decisions as f64),
                thousands(e.ess),
                thousands(e.matched as f64)
            ));
            for (name, est) in [("IPS", e.ips), ("SNIPS", e.snips), ("DR", e.dr)] {
                line(format!(
                    "  {name:<6} {:.4} [{:.4}, {:.4}]",
                    est.value, est.low, est.high
                ));
            }
            line(format!(
                "  measured by running it: {:.4} [{:.4}, {:.4}]; true expected value {:.4}",
                o.measured, o.measured_low, o.measured_high, o.truth
            ));
        }
        Err(why) => line(format!(
            "off-policy: {} from {}'s logs refused: {why} (measured by running it: {:.4})",
            o.target.as_str(),
            o.logged_by.as_str(),
            o.measured
        )),
    }
}

/// 424599.3 → "424,599".
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}
