//! docs/architecture.md lists the dependencies between the workspace's crates; this test keeps
//! that list equal to what the `Cargo.toml` files say.

use std::collections::BTreeMap;
use std::path::Path;

/// Crate name -> its normal dependencies on workspace crates (`lattice*`), sorted.
fn manifests(root: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let mut name = None;
        let mut deps = Vec::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
            } else if section == "[package]" && line.starts_with("name = ") {
                name = Some(
                    line.trim_start_matches("name = ")
                        .trim_matches('"')
                        .to_string(),
                );
            } else if section == "[dependencies]" && line.starts_with("lattice") {
                let dep = line.split(['.', ' ', '=']).next().unwrap_or_default();
                deps.push(dep.to_string());
            }
        }
        deps.sort();
        out.insert(name.expect("a [package] name"), deps);
    }
    out
}

/// The list between the crate-graph markers of docs/architecture.md.
fn documented(root: &Path) -> BTreeMap<String, Vec<String>> {
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let start = doc
        .find("<!-- crate-graph:begin -->")
        .expect("begin marker");
    let end = doc.find("<!-- crate-graph:end -->").expect("end marker");
    doc[start..end]
        .lines()
        .filter_map(|l| l.split_once(" ->"))
        .map(|(name, deps)| {
            let mut deps: Vec<String> = deps
                .split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect();
            deps.sort();
            (name.trim().to_string(), deps)
        })
        .collect()
}

#[test]
fn documented_crate_graph_matches_the_manifests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let code = manifests(&root);
    assert!(code.len() >= 10, "{code:?}");
    assert_eq!(
        documented(&root),
        code,
        "docs/architecture.md's dependency graph is out of date"
    );
    // The decision layer stays light: no path from it to the columnar stack.
    assert_eq!(code["lattice-decide"], ["lattice-catalog"]);
    assert!(code["lattice-catalog"].is_empty());
}
