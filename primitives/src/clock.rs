//! The machine's clock: the one place Sigil reads the system time (a `tidy` test and clippy's
//! `disallowed-methods` keep it so). Everything that judges time takes it as an argument (the verifier's `now`,
//! a block's timestamp), so this is only where such a `now` comes from.

use std::time::{SystemTime, UNIX_EPOCH};

/// This machine's clock, Unix milliseconds (0 for a clock set before 1970).
pub fn now_ms() -> u64 {
    #[allow(clippy::disallowed_methods)] // the clock module
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// This machine's clock, Unix seconds.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}
