//! `lattice quickstart`: sample data → trained model → server, with requests to paste.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lattice_data::synth::{GenerateOptions, generate};
use lattice_models::artifact::verify;
use lattice_models::pipeline::TrainConfig;
use lattice_models::train::{TrainOptions, train};
use lattice_runtime::LoadedModel;
use lattice_serve::auth::{ApiKey, ApiKeys, Scope, sha256_hex};
use rand::Rng;

#[derive(clap::Args)]
pub struct Args {
    /// Model to serve; trained from --data if it is missing or does not verify.
    #[arg(long, default_value = "models/demo")]
    model: PathBuf,
    /// Training data for the model; generated (5,000 synthetic customers) if missing.
    #[arg(long, default_value = "training-data/sample")]
    data: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
}

fn ensure_model(args: &Args) -> anyhow::Result<()> {
    if verify(&args.model).is_ok() {
        return Ok(());
    }
    if !args.data.join("events.parquet").exists() {
        println!(
            "generating 5,000 synthetic customers into {} …",
            args.data.display()
        );
        let opts = GenerateOptions {
            customers: 5_000,
            seed: 42,
            ..Default::default()
        };
        generate(&opts, &args.data)?;
    }
    println!(
        "training {} from {} (about 20 s) …",
        args.model.display(),
        args.data.display()
    );
    let opts = TrainOptions {
        name: name(&args.model),
        config: TrainConfig::default(),
        as_of_us: None,
        backtest: true,
        report: Some(lattice_report::render),
        force: false,
        cluster: None,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(train(&args.data, &args.model, &opts))?;
    Ok(())
}

fn name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| "demo".into(), |n| n.to_string_lossy().to_string())
}

/// A customer worth showing: the one (of the first 2,000) with the most ranked actions now.
fn example_customer(m: &LoadedModel) -> String {
    let now = lattice_decide::Context::at(chrono::Utc::now());
    let opts = lattice_decide::RankOptions::default();
    let mut best = (0usize, f64::MIN, String::new());
    for i in 0..m.customers().min(2_000) {
        let mut scratch = lattice_runtime::Scratch::default();
        let d = m.catalog.rank(&m.customer(i, &mut scratch), &now, &opts);
        let top = d.actions.first().map_or(f64::MIN, |a| a.score);
        if (d.actions.len(), top) > (best.0, best.1) {
            best = (d.actions.len(), top, d.customer_id);
        }
    }
    best.2
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    ensure_model(&args)?;
    // A fresh key for this session, with every scope: the server is never open by default.
    let key: String = {
        let bytes: [u8; 16] = rand::thread_rng().r#gen();
        format!("lk_{}", hex::encode(bytes))
    };
    let keys = ApiKeys::new(vec![ApiKey {
        name: "quickstart".into(),
        sha256: sha256_hex(&key),
        scopes: vec![Scope::Score, Scope::Audience, Scope::Events, Scope::Admin],
    }])
    .map_err(anyhow::Error::msg)?;
    let serve_args = super::serve::Args {
        model: args.model.clone(),
        addr: args.addr,
        actions: None,
        api_keys: None,
        log_json: false,
        max_body_mib: 32,
        timeout_secs: 10.0,
        write_timeout_secs: 30.0,
        concurrency: 1024,
        events_db: None,
        events_max_mib: None,
        insecure_open: false,
        reload_root: Vec::new(),
        max_online_customers: lattice_runtime::DEFAULT_MAX_ONLINE_CUSTOMERS,
        max_decisions: lattice_serve::state::DEFAULT_MAX_DECISIONS,
        challenger: None,
        challenger_actions: None,
        challenger_share: 0.1,
    };
    super::serve::run_with(serve_args, keys, move |addr, m| {
        let id = example_customer(m);
        let base = format!("http://{addr}");
        let auth = format!("-H 'Authorization: Bearer {key}'");
        println!(
            "\nLattice is serving model {} (as of {}, {} customers, {} actions) on {base}\n\
             API key for this session: {key}\n\nTry:\n\
             curl -s {auth} {base}/v1/customers/{id}/scores\n\
             curl -s {auth} '{base}/v1/customers/{id}/next-best-actions?limit=3&explain=true'\n\
             curl -s {auth} -H 'Content-Type: application/json' -d '{{\"context\": {{\"channel\": \"push\", \"category\": \"{cat}\"}}}}' {base}/v1/customers/{id}/next-best-actions\n\
             curl -s {auth} '{base}/v1/customers/{id}/send-time?channel=email'\n\
             curl -s {auth} -H 'Content-Type: application/json' -d '{{\"customer_ids\": [\"{id}\"]}}' {base}/v1/score\n\
             curl -s {auth} {base}/v1/models\n\
             curl -s {auth} -H 'Content-Type: application/json' -d '[{{\"customer_id\": \"{id}\", \"ts\": \"{now}\", \"event_type\": \"purchase\", \"amount\": 80, \"category\": \"{cat}\", \"event_id\": \"qs-1\"}}]' {base}/v1/events\n\
             curl -s {auth} '{base}/v1/customers/{id}/next-best-actions?limit=3&record=true'\n\
             curl -s {auth} -H 'Content-Type: application/json' -d '{{\"target\": {{\"category\": \"{cat}\"}}, \"size\": {{\"top\": 100}}, \"preview\": 5}}' {base}/v1/audiences\n\
             curl -s {auth} -H 'Content-Type: application/json' -d '{{\"target\": {{\"churn\": true}}, \"size\": {{\"top\": 500}}}}' '{base}/v1/audiences?format=csv'\n\
             curl -s {base}/metrics\n\
             curl -s {base}/openapi.json\n\n\
             The audience builder: {base}/ (paste the key above)\n\nCtrl-C stops the server.",
            m.manifest.name,
            m.manifest.as_of,
            m.customers(),
            m.catalog.len(),
            cat = m.manifest.categories.first().map_or("", String::as_str),
            now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    })
}
