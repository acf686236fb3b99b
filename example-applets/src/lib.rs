//! # sigil-example-applets: the example applets, built and compiled in
//!
//! The applets in `applets/` (notes, hash, fetch, runaway, tools), built for `wasm32-wasip1` by this crate's build
//! script and carried inside whatever links it: `sigil devnet` deploys them from the binary itself (no cargo, no
//! source tree at run time), and the tests and benches take them from here instead of building them again.
//!
//! Building this crate needs the `wasm32-wasip1` target (`scripts/setup.sh` installs it).

/// One example applet: its name, its manifest (TOML, as in `applets/NAME/sigil.toml`; the code digest is filled
/// from the module when it is parsed) and its module.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// The applet's name (its directory under `applets/`).
    pub name: &'static str,
    /// `applets/NAME/sigil.toml`.
    pub manifest: &'static str,
    /// The release build of the applet for `wasm32-wasip1`.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/applets.rs"));

/// The example applet called `name`.
pub fn get(name: &str) -> Option<&'static Example> {
    ALL.iter().find(|e| e.name == name)
}

/// The example applet called `name`.
///
/// # Panics
/// If there is none: for tests and benches, which name applets that exist.
pub fn example(name: &str) -> &'static Example {
    get(name).unwrap_or_else(|| panic!("no example applet {name:?} (there are {:?})", names()))
}

/// The names of the example applets.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|e| e.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_a_wasm_module_with_its_manifest() {
        assert_eq!(names(), ["fetch", "hash", "notes", "runaway", "tools"]);
        for e in ALL {
            assert_eq!(&e.wasm[..4], b"\0asm", "{} is a wasm module", e.name);
            assert!(e.manifest.contains(&format!("name = \"{}\"", e.name)), "{}'s manifest names it", e.name);
        }
        assert!(get("nope").is_none());
    }
}
