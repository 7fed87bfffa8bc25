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

/// Class 7 of issue 21: the document says what is sent. Every error is documented as
/// `application/problem+json` (what `Problem` sends), every route under /v1 documents the
/// load gate's 503, and every route with a body the extractors' 400, 413, 415 and 422.
#[test]
fn every_error_is_documented_as_problem_json_with_the_answers_every_route_can_give() {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for (code, r) in responses {
                if code.as_str() >= "400" {
                    let content = r["content"].as_object().unwrap();
                    let types: Vec<&String> = content.keys().collect();
                    assert_eq!(
                        types,
                        vec!["application/problem+json"],
                        "{method} {path} {code}"
                    );
                    checked += 1;
                }
            }
            let must: &[&str] = if op.get("requestBody").is_some() {
                &["400", "413", "415", "422", "503"]
            } else if path.starts_with("/v1/") {
                &["503", "401", "403"]
            } else {
                &["503"]
            };
            for code in must {
                assert!(
                    responses.contains_key(*code),
                    "{method} {path} does not document {code}"
                );
            }
        }
    }
    assert!(checked > 40, "only {checked} error answers documented");
    // Answers only some routes give: the decision quota of record=true.
    for method in ["get", "post"] {
        let op = &doc["paths"]["/v1/customers/{id}/next-best-actions"][method];
        assert!(
            op["responses"].get("429").is_some(),
            "{method} next-best-actions does not document the decision quota's 429"
        );
    }
}
