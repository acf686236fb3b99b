//! Tidy: checks over the repository's files, run with the other tests (`cargo test -p sigil-tidy`). Each check
//! says what drifted and where to fix it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Every `.rs` file under `dir` (relative to the root), skipping build output.
fn rust_files(dir: &str) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(p) else { return };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules" | "corpus" | "artifacts")
                    && !name.starts_with('.')
                {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), &mut out);
    out.sort();
    out
}

/// The workspace's member directories, from the root Cargo.toml.
fn members() -> Vec<String> {
    let toml = read("Cargo.toml");
    let line = toml.lines().find(|l| l.trim_start().starts_with("members")).expect("a members line");
    line.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

/// The words in backticks in `text`.
fn backticked(text: &str) -> BTreeSet<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn same(what: &str, a: (&str, &BTreeSet<String>), b: (&str, &BTreeSet<String>)) {
    let only_a: Vec<_> = a.1.difference(b.1).collect();
    let only_b: Vec<_> = b.1.difference(a.1).collect();
    assert!(only_a.is_empty() && only_b.is_empty(), "{what}: only in {}: {only_a:?}; only in {}: {only_b:?}", a.0, b.0);
}

#[test]
fn the_fuzz_targets_agree_everywhere_they_are_listed() {
    let cargo = read("fuzz/Cargo.toml");
    let bins: BTreeSet<String> = cargo
        .split("[[bin]]")
        .skip(1)
        .filter_map(|b| b.lines().find(|l| l.starts_with("name")).and_then(|l| l.split('"').nth(1)).map(String::from))
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(root().join("fuzz/fuzz_targets"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".rs").map(String::from))
        .collect();
    let script = read("scripts/fuzz.sh");
    let listed = script.split("targets=(snp_report").nth(1).expect("fuzz.sh's default target list");
    let listed: BTreeSet<String> =
        format!("snp_report{}", &listed[..listed.find(')').unwrap()]).split_whitespace().map(String::from).collect();
    let arch = read("ARCHITECTURE.md");
    let para = arch.split("libFuzzer targets").nth(1).expect("ARCHITECTURE.md names the fuzz targets");
    let documented: BTreeSet<String> = backticked(&para[..para.find("\n\n").unwrap_or(para.len())])
        .into_iter()
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    same("fuzz targets", ("fuzz/Cargo.toml", &bins), ("fuzz/fuzz_targets/", &files));
    same("fuzz targets", ("fuzz/Cargo.toml", &bins), ("scripts/fuzz.sh", &listed));
    same("fuzz targets", ("fuzz/Cargo.toml", &bins), ("ARCHITECTURE.md", &documented));
}

#[test]
fn every_crate_module_group_and_command_is_in_the_code_map() {
    let arch = read("ARCHITECTURE.md");
    let map = arch.split("## Code map").nth(1).expect("ARCHITECTURE.md has a code map");
    let named = backticked(map);
    let mut missing = Vec::new();
    for m in members() {
        if !named.contains(&format!("{m}/")) {
            missing.push(format!("crate {m}/"));
        }
        let src = root().join(&m).join("src");
        let Ok(entries) = std::fs::read_dir(&src) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let module = match name.strip_suffix(".rs") {
                Some("lib" | "main") => continue,
                Some(stem) => stem.to_string(),
                None if e.path().is_dir() => name.clone(),
                None => continue,
            };
            // A command file by its file name, a module or module group by its path or its name.
            let ok = if module.ends_with("_cmd") {
                named.contains(&name)
            } else {
                [format!("{m}/src/{name}"), module.clone(), format!("{module}/"), format!("{module}.rs")]
                    .iter()
                    .any(|n| named.contains(n))
            };
            if !ok {
                missing.push(format!("{m}/src/{name}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in ARCHITECTURE.md's code map (name each in backticks): {missing:?}");
}

#[test]
fn every_http_route_is_in_openapi_json() {
    let spec: serde_json::Value = serde_json::from_str(&read("node/src/service/openapi.json")).unwrap();
    let documented: BTreeSet<String> = spec["paths"].as_object().expect("paths").keys().cloned().collect();
    let mut routes = BTreeSet::new();
    for f in rust_files("node/src/service") {
        let text = std::fs::read_to_string(&f).unwrap();
        for part in text.split(".route(").skip(1) {
            let part = part.trim_start();
            if let Some(path) = part.strip_prefix('"').and_then(|p| p.split('"').next()) {
                routes.insert(path.to_string());
            }
        }
    }
    assert!(routes.len() > 10, "found only {routes:?}: has the router moved?");
    same("HTTP routes", ("the routers in node/src/service", &routes), ("openapi.json", &documented));
}

#[test]
fn the_system_clock_is_read_in_one_place() {
    let needle = ["SystemTime", "::now"].concat();
    let allowed = root().join("primitives/src/clock.rs");
    let mut found = Vec::new();
    for dir in members().iter().map(String::as_str).chain(["fuzz", "applets"]) {
        if dir == "tidy" {
            continue;
        }
        for f in rust_files(dir) {
            if f != allowed && std::fs::read_to_string(&f).unwrap().contains(&needle) {
                found.push(f.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(found.is_empty(), "{needle} outside primitives/src/clock.rs (use sigil_primitives::clock): {found:?}");
}

/// The part of a Rust file before its unit tests (`#[cfg(test)]`), where tests may use what the code may not.
fn code_of(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn the_pod_rules_are_free_of_engine_types() {
    // The block format and rules, pod state and admission are read, tested and fuzzed without Malachite in view
    // (Malachite keeps its core consensus apart from its engine the same way). `context`, `signing`, `codec`
    // and `app/` are the engine side.
    let mut found = Vec::new();
    for rel in
        ["pod/src/types.rs", "pod/src/block.rs", "pod/src/state.rs", "pod/src/admission.rs", "pod/src/rejection.rs"]
    {
        let text = read(rel);
        // Code only: comments may point at the engine side.
        let code: String =
            code_of(&text).lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        for needle in ["malachite", "context::", "signing::", "libp2p"] {
            if code.contains(needle) {
                found.push(format!("{rel} names {needle}"));
            }
        }
    }
    assert!(found.is_empty(), "engine types in the pod's rules (use crate::types): {found:?}");
}

#[test]
fn anyhow_is_used_only_at_the_cli_edge() {
    // Libraries return typed errors callers can branch on; `anyhow` is for the binary's commands, which print them.
    let edge = |f: &Path| {
        let rel = f.strip_prefix(root().join("node/src")).ok();
        rel.is_some_and(|r| {
            let r = r.to_string_lossy();
            r == "main.rs" || r == "cli.rs" || (!r.contains('/') && r.ends_with("_cmd.rs"))
        })
    };
    let mut found = Vec::new();
    for dir in members().iter().map(String::as_str).filter(|d| *d != "tidy") {
        for f in rust_files(dir) {
            if !edge(&f) && code_of(&std::fs::read_to_string(&f).unwrap()).contains("anyhow") {
                found.push(f.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(found.is_empty(), "anyhow outside node/src/{{main,cli,*_cmd}}.rs (return a typed error): {found:?}");
}

#[test]
fn the_binary_s_command_files_hold_no_unit_tests() {
    // node/Cargo.toml builds no unit-test harness for the `sigil` binary (`test = false`): a test there would
    // never run. Test commands through the binary (node/tests/it) or move the logic into the library.
    let lib = read("node/src/lib.rs");
    let mut found = Vec::new();
    for f in rust_files("node/src") {
        let rel = f.strip_prefix(root().join("node/src")).unwrap().to_string_lossy().into_owned();
        let module = rel.trim_end_matches(".rs");
        let in_lib = rel.contains('/') || lib.contains(&format!("mod {module};"));
        if !in_lib && std::fs::read_to_string(&f).unwrap().contains("#[cfg(test)]") {
            found.push(rel);
        }
    }
    assert!(found.is_empty(), "unit tests in the binary's modules never run: {found:?}");
}
