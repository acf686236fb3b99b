//! `sigil applet check | run` on the example applets (their files, as `sigil-example-applets` built them).

use std::path::{Path, PathBuf};
use std::process::Command;

fn sigil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sigil")).args(args).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn paths(name: &str) -> (String, String) {
    let dir = crate::support::applet_files();
    let (manifest, module) = (dir.join(name).join("sigil.toml"), dir.join(format!("{name}.wasm")));
    (manifest.display().to_string(), module.display().to_string())
}

fn tempdir(tag: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("applet-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn run_keeps_state_between_calls_only_when_ok() {
    let (m, w) = paths("notes");
    let dir = tempdir("state");
    let state = dir.join("state.json");
    let s = state.to_str().unwrap();
    let (code, out, err) =
        sigil(&["applet", "run", &m, &w, "put", "--args", r#"{"key":"a","value":"1"}"#, "--state", s]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("outcome    ok"), "{out}");
    let (code, out, _) = sigil(&["applet", "run", &m, &w, "get", "--args", r#"{"key":"a"}"#, "--state", s, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["output"], r#"{"key":"a","value":"1"}"#);
    assert_eq!(v["receipt"]["code_digest"].as_str().unwrap().len(), 64);
    let before = std::fs::read(&state).unwrap();
    let (code, out, _) = sigil(&["applet", "run", &m, &w, "put", "--args", r#"{"nokey":1}"#, "--state", s]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("outcome    error: bad arguments"), "{out}");
    assert_eq!(std::fs::read(&state).unwrap(), before, "a failed run changes nothing");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn runaway_outcomes_and_refusals_exit_1() {
    let (m, w) = paths("runaway");
    let (code, out, _) = sigil(&["applet", "run", &m, &w, "spin", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["outcome"], "out_of_fuel");
    let (code, out, _) = sigil(&["applet", "run", &m, &w, "no_such_method"]);
    assert_eq!(code, 1);
    assert!(out.contains("refused before running: applet runaway has no method"), "{out}");
    let (code, _, err) = sigil(&["applet", "run", &m, &w, "spin", "--caller", "ed25519:zz"]);
    assert_eq!(code, 2);
    assert!(err.contains("--caller"), "{err}");
}

#[test]
fn check_reports_what_an_applet_may_do_and_refuses_a_wrong_module() {
    let (m, w) = paths("tools");
    let (code, out, _) = sigil(&["applet", "check", &m, &w]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("create_ticket, get_ticket, search_tickets"), "{out}");
    assert!(out.contains("kv tickets (read_write); log; clock"), "{out}");
    let (_, other) = paths("hash");
    let pinned = tempdir("pinned").join("sigil.toml");
    let digest = {
        let (_, j, _) = sigil(&["applet", "check", &m, &w, "--json"]);
        serde_json::from_str::<serde_json::Value>(&j).unwrap()["code_digest"].as_str().unwrap().to_string()
    };
    std::fs::write(&pinned, format!("code_digest = \"{digest}\"\n{}", std::fs::read_to_string(&m).unwrap())).unwrap();
    let (code, out, _) = sigil(&["applet", "check", pinned.to_str().unwrap(), &other]);
    assert_eq!(code, 1);
    assert!(out.contains("differs from the manifest's code_digest"), "{out}");
    let (code, _, err) = sigil(&["applet", "check", "/nonexistent.toml", &w]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.toml"), "{err}");
}
