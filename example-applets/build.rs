//! Builds the example applets (`../applets`, a cargo workspace of its own for `wasm32-wasip1`) and writes
//! `applets.rs` into `OUT_DIR`: one [`Example`] per applet directory holding a `sigil.toml`, its manifest and
//! its module compiled in with `include_str!`/`include_bytes!`. wasmtime's `test-programs/artifacts` is the model.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let applets = manifest_dir.join("../applets").canonicalize().expect("the applets/ directory");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed={}", applets.display());
    let names = applet_names(&applets);
    // A target directory of its own beside the outer build's (the outer one is locked while this runs), shared
    // by every profile so that the applets build once: OUT_DIR is TARGET/PROFILE/build/PKG-HASH/out.
    let target = out.ancestors().nth(4).map(|t| t.join("applets")).unwrap_or_else(|| out.join("applets"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // From applets/, so that applets/.cargo/config.toml (the applets' stack and initial memory) applies.
    cmd.current_dir(&applets)
        .args(["build", "--release", "--locked", "--quiet", "--target", "wasm32-wasip1", "--target-dir"])
        .arg(&target);
    // What the outer build was given is for the host crates, not for the applets.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_INCREMENTAL",
    ] {
        cmd.env_remove(var);
    }
    // Nor the outer build's profile and per-target overrides: the applets' own release profile decides.
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy().into_owned();
        if var.starts_with("CARGO_PROFILE_") || var.starts_with("CARGO_TARGET_WASM32_") {
            cmd.env_remove(var);
        }
    }
    // Captured, not inherited: this script's stdout is where cargo reads its directives.
    let built = cmd.output().unwrap_or_else(|e| panic!("cannot run cargo to build the example applets: {e}"));
    if !built.status.success() {
        panic!(
            "building the example applets in {} failed (is the wasm32-wasip1 target installed? \
             `rustup target add wasm32-wasip1`; scripts/setup.sh does it):\n{}",
            applets.display(),
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let wasm_dir = target.join("wasm32-wasip1/release");
    let mut code = String::from("/// Every example applet, by name.\npub const ALL: &[Example] = &[\n");
    for name in &names {
        let wasm = wasm_dir.join(format!("{name}.wasm"));
        assert!(wasm.is_file(), "applets/{name} has a sigil.toml but built no {}", wasm.display());
        code.push_str(&format!(
            "    Example {{ name: {name:?}, manifest: include_str!({:?}), wasm: include_bytes!({:?}) }},\n",
            applets.join(name).join("sigil.toml").display().to_string(),
            wasm.display().to_string(),
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("applets.rs"), code).expect("writing applets.rs");
}

/// The applet directories: those with a `sigil.toml` manifest, sorted.
fn applet_names(applets: &Path) -> Vec<String> {
    let workspace = std::fs::read_to_string(applets.join("Cargo.toml")).expect("applets/Cargo.toml");
    let mut names: Vec<String> = std::fs::read_dir(applets)
        .expect("reading applets/")
        .flatten()
        .filter(|e| e.path().join("sigil.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Each must be built by the applets' workspace, or a stale module of that name could be embedded.
    for name in &names {
        assert!(
            workspace.contains(&format!("\"{name}\"")),
            "applets/{name} has a sigil.toml but is not a member of applets/Cargo.toml"
        );
    }
    names.sort();
    names
}
