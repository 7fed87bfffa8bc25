//! `/openapi.json` is a valid OpenAPI document, checked by the reference validator
//! (openapi-spec-validator, installed by `.ci/run` from scripts/requirements-test.txt).

use std::path::PathBuf;
use std::process::Command;

use lattice_serve::ApiDoc;
use utoipa::OpenApi;

/// The test Python: `LATTICE_PYTHON`, else the venv `.ci/run` makes, else `python3`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("LATTICE_PYTHON") {
        return p.into();
    }
    let venv = std::env::var("HOME").map(|h| PathBuf::from(h).join(".venvs/lattice/bin/python"));
    match venv {
        Ok(p) if p.exists() => p,
        _ => "python3".into(),
    }
}

#[test]
fn openapi_document_validates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, ApiDoc::openapi().to_pretty_json().unwrap()).unwrap();
    let py = python();
    let out = Command::new(&py)
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", py.display()));
    assert!(
        out.status.success(),
        "openapi.json does not validate (or the validator is missing: \
         `python3 -m venv ~/.venvs/lattice && ~/.venvs/lattice/bin/pip install -r \
         scripts/requirements-test.txt`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
