//! `hash`: pure functions, no capabilities: deterministic, replayable by anyone from the logged input.
//!
//! Methods: `sha256` (input bytes → the 32-byte digest as 64 hex digits), `nan` (a float computation whose NaN bit
//! pattern differs between CPUs unless the host canonicalises NaNs; output: the 8 hex digits of the f32 bits).

use sha2::{Digest, Sha256};
use sigil_sdk::Error;

fn hex(bytes: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]).collect()
}

fn sha256(input: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(hex(&Sha256::digest(input)))
}

fn nan(input: &[u8]) -> Result<Vec<u8>, Error> {
    // 0/0 from values the compiler cannot see: x86 produces the "default NaN" 0xffc00000, Arm 0x7fc00000.
    let zero = core::hint::black_box(input.len() as f32 * 0.0);
    let other_zero = core::hint::black_box(zero);
    let q = core::hint::black_box(zero / other_zero);
    Ok(hex(&q.to_bits().to_be_bytes()))
}

sigil_sdk::methods! { sha256 => sha256, nan => nan }
