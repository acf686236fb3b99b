//! # sigil-sdk: write a Sigil applet in a few lines
//!
//! An applet is a WebAssembly module (built for `wasm32-wasip1`) whose methods are exports named `sigil:METHOD`
//! taking nothing and returning an `i32` status. The host hands the method its input and the caller's key, and
//! takes back one output. Everything else — key-value state, HTTP egress, logs, the clock, randomness — is a
//! capability the applet's manifest must grant; a call to one that was not granted ends the run with the outcome
//! `denied`. The ABI is documented in `docs/applets.md`; this crate wraps it:
//!
//! ```ignore
//! fn get(input: &[u8]) -> Result<Vec<u8>, sigil_sdk::Error> {
//!     Ok(sigil_sdk::kv::get("notes", input).unwrap_or_default())
//! }
//! sigil_sdk::methods! { get => get }
//! ```

use std::fmt;

/// The raw imports from the host (module `sigil`). Each is linked only if used, so a module's imports list exactly
/// the capabilities it can reach.
#[allow(missing_docs)]
pub mod sys {
    #[link(wasm_import_module = "sigil")]
    extern "C" {
        pub fn input_len() -> i32;
        pub fn input_read(ptr: *mut u8, len: i32);
        pub fn caller_read(ptr: *mut u8);
        pub fn output_write(ptr: *const u8, len: i32);
        pub fn result_read(ptr: *mut u8, len: i32);
        pub fn kv_get(ns: *const u8, ns_len: i32, key: *const u8, key_len: i32) -> i64;
        pub fn kv_put(ns: *const u8, ns_len: i32, key: *const u8, key_len: i32, val: *const u8, val_len: i32);
        pub fn kv_delete(ns: *const u8, ns_len: i32, key: *const u8, key_len: i32) -> i32;
        pub fn kv_list(ns: *const u8, ns_len: i32, prefix: *const u8, prefix_len: i32) -> i64;
        pub fn log(level: i32, ptr: *const u8, len: i32);
        pub fn clock_ms() -> i64;
        pub fn random_fill(ptr: *mut u8, len: i32);
        pub fn http_request(
            method: *const u8,
            method_len: i32,
            url: *const u8,
            url_len: i32,
            body: *const u8,
            body_len: i32,
        ) -> i64;
    }
}

/// An applet-level error: the run ends with the outcome `error` and this message; its writes are discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Error(s.to_string())
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

#[cfg(feature = "json")]
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error(format!("bad arguments: {e}"))
    }
}

/// A method's handler: input bytes in, output bytes (or an error) out.
pub type Handler = fn(&[u8]) -> Result<Vec<u8>, Error>;

/// Exports each handler as method `sigil:NAME`.
///
/// ```ignore
/// sigil_sdk::methods! { put => put, get => get }
/// ```
#[macro_export]
macro_rules! methods {
    ($($name:ident => $handler:path),* $(,)?) => {
        $(
            const _: () = {
                #[export_name = concat!("sigil:", stringify!($name))]
                extern "C" fn method() -> i32 {
                    $crate::run($handler)
                }
            };
        )*
    };
}

/// Runs a handler with the call's input and hands its result to the host (used by [`methods!`]).
pub fn run(handler: Handler) -> i32 {
    let input = input();
    match handler(&input) {
        Ok(out) => {
            output(&out);
            0
        }
        Err(e) => {
            output(e.0.as_bytes());
            1
        }
    }
}

fn len32(b: &[u8]) -> i32 {
    i32::try_from(b.len()).expect("wasm32 slices fit in i32")
}

fn take_result(len: i64) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    unsafe { sys::result_read(buf.as_mut_ptr(), len32(&buf)) };
    buf
}

/// The call's input (the request's arguments).
pub fn input() -> Vec<u8> {
    let n = unsafe { sys::input_len() };
    let mut buf = vec![0u8; n as usize];
    unsafe { sys::input_read(buf.as_mut_ptr(), n) };
    buf
}

/// The caller's Ed25519 public key (who signed the request).
pub fn caller() -> [u8; 32] {
    let mut key = [0u8; 32];
    unsafe { sys::caller_read(key.as_mut_ptr()) };
    key
}

/// Sets the call's output (replacing any earlier one). [`methods!`] does this with the handler's result.
pub fn output(bytes: &[u8]) {
    unsafe { sys::output_write(bytes.as_ptr(), len32(bytes)) }
}

/// Pod-local key-value state (capability `kv`, per namespace, read or read/write). Writes are buffered in the
/// run's write set and applied only when the run ends `ok` and its receipt commits.
pub mod kv {
    use super::*;

    /// The value at `key` in `namespace`, if any.
    pub fn get(namespace: &str, key: &[u8]) -> Option<Vec<u8>> {
        let n = unsafe { sys::kv_get(namespace.as_ptr(), len32(namespace.as_bytes()), key.as_ptr(), len32(key)) };
        (n >= 0).then(|| take_result(n))
    }

    /// Writes `value` at `key` (needs read/write access to `namespace`).
    pub fn put(namespace: &str, key: &[u8], value: &[u8]) {
        unsafe {
            sys::kv_put(
                namespace.as_ptr(),
                len32(namespace.as_bytes()),
                key.as_ptr(),
                len32(key),
                value.as_ptr(),
                len32(value),
            )
        }
    }

    /// Deletes `key`; true if it existed.
    pub fn delete(namespace: &str, key: &[u8]) -> bool {
        unsafe { sys::kv_delete(namespace.as_ptr(), len32(namespace.as_bytes()), key.as_ptr(), len32(key)) == 1 }
    }

    /// The keys in `namespace` that start with `prefix`, in byte order.
    pub fn list(namespace: &str, prefix: &[u8]) -> Vec<Vec<u8>> {
        let n =
            unsafe { sys::kv_list(namespace.as_ptr(), len32(namespace.as_bytes()), prefix.as_ptr(), len32(prefix)) };
        let buf = take_result(n);
        let mut keys = Vec::new();
        let mut rest = &buf[..];
        while rest.len() >= 4 {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            keys.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        keys
    }
}

/// Log levels for [`log`].
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub enum Level {
    /// Details.
    Debug = 0,
    /// Normal events.
    Info = 1,
    /// Something to look at.
    Warn = 2,
    /// Something failed.
    Error = 3,
}

/// Writes a line to the node's log for this run (capability `log`).
pub fn log(level: Level, message: &str) {
    unsafe { sys::log(level as i32, message.as_ptr(), len32(message.as_bytes())) }
}

/// The host's clock for this run, Unix milliseconds (capability `clock`). The host fixes it per invocation and
/// records it, so a replay sees the same time.
pub fn now_ms() -> u64 {
    unsafe { sys::clock_ms() as u64 }
}

/// Fills `buf` with bytes from the host's generator for this run (capability `random`). The stream is derived
/// from the request hash so that a replay sees the same bytes: good for ids and sampling, never for secrets.
pub fn random(buf: &mut [u8]) {
    unsafe { sys::random_fill(buf.as_mut_ptr(), len32(buf)) }
}

/// Outbound HTTP to the hosts the manifest allows (capability `http`).
pub mod http {
    use super::*;

    /// A response.
    #[derive(Debug, Clone)]
    pub struct Response {
        /// HTTP status.
        pub status: u16,
        /// Body bytes.
        pub body: Vec<u8>,
    }

    /// Sends a request. Network failures come back as `Err`; a host or address the manifest does not allow ends
    /// the run with the outcome `denied`.
    pub fn request(method: &str, url: &str, body: &[u8]) -> Result<Response, Error> {
        let r = unsafe {
            sys::http_request(
                method.as_ptr(),
                len32(method.as_bytes()),
                url.as_ptr(),
                len32(url.as_bytes()),
                body.as_ptr(),
                len32(body),
            )
        };
        if r < 0 {
            let msg = take_result(-(r + 1));
            return Err(Error(String::from_utf8_lossy(&msg).into_owned()));
        }
        let status = (r >> 32) as u16;
        let body = take_result(r & 0xffff_ffff);
        Ok(Response { status, body })
    }

    /// `GET url`.
    pub fn get(url: &str) -> Result<Response, Error> {
        request("GET", url, &[])
    }
}

/// Parses the input as JSON.
#[cfg(feature = "json")]
pub fn json<T: serde::de::DeserializeOwned>(input: &[u8]) -> Result<T, Error> {
    Ok(serde_json::from_slice(input)?)
}

/// Serialises a result as JSON.
#[cfg(feature = "json")]
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error(format!("cannot encode result: {e}")))
}

#[cfg(feature = "json")]
pub use serde;
#[cfg(feature = "json")]
pub use serde_json;
