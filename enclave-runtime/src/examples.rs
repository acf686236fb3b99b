//! The example applets in `applets/` (notes, hash, fetch, runaway, tools), built from source: for tests, benches
//! and the devnet. Needs the `wasm32-wasip1` target (`rustup target add wasm32-wasip1`; `scripts/setup.sh` does
//! it). Works only from a source checkout: the path is the one this crate was compiled from.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Manifest, RuntimeError};

/// Names of the example applets.
pub const NAMES: &[&str] = &["notes", "hash", "fetch", "runaway", "tools"];

/// `applets/` in the source tree.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../applets")
}

/// Builds every example applet (release, `wasm32-wasip1`) into `target_dir` and returns the directory holding the
/// `.wasm` files. Cargo's own lock serialises concurrent builds; an up-to-date build takes well under a second.
pub fn build(target_dir: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        // From applets/, so that applets/.cargo/config.toml (the applets' stack size) applies.
        .current_dir(source_dir())
        .args(["build", "--release", "--locked", "--quiet", "--target", "wasm32-wasip1", "--manifest-path"])
        .arg(source_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        // The caller's flags (sanitisers, coverage, a target dir) are for the host build, not for the applets.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("cannot run cargo to build the applets: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("wasm32-wasip1") && stderr.contains("target") {
            "\nhint: install the target with `rustup target add wasm32-wasip1` (scripts/setup.sh does this)"
        } else {
            ""
        };
        return Err(format!("building the example applets failed:\n{stderr}{hint}"));
    }
    Ok(target_dir.join("wasm32-wasip1/release"))
}

/// One example applet: its manifest (from `applets/NAME/sigil.toml`, digest filled from the module) and module.
pub fn load(wasm_dir: &Path, name: &str) -> Result<(Manifest, Vec<u8>), RuntimeError> {
    let toml_path = source_dir().join(name).join("sigil.toml");
    let text = std::fs::read_to_string(&toml_path)
        .map_err(|e| RuntimeError::Manifest(format!("{}: {e}", toml_path.display())))?;
    let wasm_path = wasm_dir.join(format!("{name}.wasm"));
    let wasm = std::fs::read(&wasm_path).map_err(|e| RuntimeError::Module(format!("{}: {e}", wasm_path.display())))?;
    Ok((Manifest::from_toml(&text, &wasm)?, wasm))
}
