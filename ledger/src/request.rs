//! Signed requests: what a caller sends to run an applet method, and how anyone checks it.
//!
//! A [`Request`] names its pod, applet, method and arguments, with a nonce and the time it was made, and the
//! caller's Ed25519 key. The caller signs `"sigil/request/v1\0" ‖ canonical CBOR of the request`; the
//! [`SignedRequest`] (request + signature) travels in canonical CBOR, and the SHA-256 of those exact bytes is
//! the request hash every receipt names. Decoding accepts only the canonical encoding, so one request has one
//! hash.
//!
//! What a node checks before anything runs ([`SignedRequest::verify`] and the node's own checks): the signature
//! over the raw request bytes, the pod, a freshness window around `issued_at_ms`, the nonce not used before by
//! this caller, and the applet's access rules. Validators check the same again inside blocks.
//!
//! A caller that holds an OAuth access token instead of signing each call (an MCP client, say) delegates: it
//! signed a client assertion (an RFC 7523 JWT, EdDSA with its own key) for the pod's authorization server, and the
//! node that took the token signs the request with its own key, carrying that assertion ([`Delegation`]). The
//! assertion names the caller's key, the pod (in its audience) and a lifetime of at most an hour; the request must
//! be made within it, and the delegate must be a validator of the pod (the node checks that, it holds the set).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::hash::Hash;
use sigil_primitives::cbor;

/// Domain of the caller's signature.
pub const REQUEST_DOMAIN: &[u8] = b"sigil/request/v1\0";
/// Largest encoded signed request.
pub const MAX_REQUEST_LEN: usize = 1 << 20;
/// Nonce length bounds, bytes.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=64;
/// How old a request may be when it is checked (the node's clock, or a block's time).
pub const MAX_AGE_MS: u64 = 5 * 60_000;
/// How far ahead of the checking clock a request may claim to be made.
pub const MAX_AHEAD_MS: u64 = 30_000;

/// What the caller asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The pod that must run it (a node of another pod redirects).
    pub pod: String,
    /// Applet name.
    pub applet: String,
    /// Method.
    pub method: String,
    /// Arguments: the applet's input (JSON text for the example applets).
    pub args: ByteBuf,
    /// Random, unique per caller: 16 to 64 bytes.
    pub nonce: ByteBuf,
    /// When the caller made it, Unix milliseconds.
    pub issued_at_ms: u64,
    /// The caller's Ed25519 public key.
    pub caller: ByteBuf,
}

/// Domain of a delegate's signature.
pub const DELEGATED_DOMAIN: &[u8] = b"sigil/request/delegated/v1\0";
/// Longest lifetime of a delegation (a client assertion's `exp - iat`).
pub const MAX_DELEGATION_S: u64 = 3600;
/// The OAuth client id of a caller: `ed25519:` and its key in hex.
pub const CLIENT_ID_PREFIX: &str = "ed25519:";

/// A request with the caller's signature, or the signature of a node the caller delegated to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    /// The request.
    pub request: Request,
    /// Ed25519 signature of `caller` over [`Request::signing_bytes`]; with a delegation, the delegate's over
    /// [`Request::delegated_signing_bytes`].
    pub signature: ByteBuf,
    /// Present when a node signed on the caller's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<Delegation>,
}

/// The caller's signed consent for a node to sign its requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// The client assertion: a compact JWT (RFC 7523), `alg` EdDSA, signed with the caller's key, exactly as the
    /// caller sent it to the token endpoint.
    pub assertion: String,
    /// The delegate node's Ed25519 key: it signs the request.
    pub delegate: ByteBuf,
}

/// The claims of a client assertion that were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    /// The caller's key (from `iss` = `sub` = its client id).
    pub caller: [u8; 32],
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// The audience that named the pod.
    pub aud: String,
    /// The assertion's `jti`, if it has one (a token endpoint takes each once).
    pub jti: Option<String>,
}

/// The client id of a key.
pub fn client_id(key: &[u8; 32]) -> String {
    format!("{CLIENT_ID_PREFIX}{}", hex::encode(key))
}

/// The key of a client id.
pub fn client_key(client_id: &str) -> Result<[u8; 32], String> {
    let hex_key = client_id
        .strip_prefix(CLIENT_ID_PREFIX)
        .ok_or_else(|| format!("a client id is {CLIENT_ID_PREFIX} and a key in hex, not {client_id:?}"))?;
    let b = hex::decode(hex_key).map_err(|_| "the client id's key is not hex".to_string())?;
    b.try_into().map_err(|b: Vec<u8>| format!("the client id's key is {} bytes, not 32", b.len()))
}

/// The path an authorization server's issuer identifier ends with for `pod`: an assertion whose audience ends
/// otherwise is for another pod.
pub fn issuer_path(pod: &str) -> String {
    format!("/oauth/{pod}")
}

/// Makes a client assertion (what an OAuth client sends to a token endpoint with `private_key_jwt`): claims `iss` =
/// `sub` = the key's client id, `aud`, `iat`, `exp` = `iat + lifetime_s`, `jti`, signed with `key` (EdDSA).
pub fn client_assertion(
    key: &ring::signature::Ed25519KeyPair,
    aud: &str,
    iat: u64,
    lifetime_s: u64,
    jti: &str,
) -> String {
    use base64::Engine;
    use ring::signature::KeyPair;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let id = client_id(key.public_key().as_ref().try_into().expect("an Ed25519 key is 32 bytes"));
    // Written out in a fixed order: the bytes must not depend on how serde_json orders maps in this build.
    let s = |v: &str| serde_json::Value::from(v).to_string();
    let claims = format!(
        r#"{{"iss":{},"sub":{},"aud":{},"iat":{iat},"exp":{},"jti":{}}}"#,
        s(&id),
        s(&id),
        s(aud),
        iat + lifetime_s,
        s(jti)
    );
    let signed = format!("{}.{}", b64.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#), b64.encode(claims));
    let sig = key.sign(signed.as_bytes());
    format!("{signed}.{}", b64.encode(sig.as_ref()))
}

/// Checks a client assertion for `pod`: compact JWT, header `alg` EdDSA, the Ed25519 signature of the key named
/// by `iss` (= `sub`) over the raw `header.payload` bytes, checked before any claim is trusted; an https audience
/// that ends with [`issuer_path`]; `iat` and `exp` present, `exp > iat`, at most [`MAX_DELEGATION_S`] apart.
/// Expiry against a clock is the caller's check (it depends on whose clock).
pub fn verify_assertion(jwt: &str, pod: &str) -> Result<Assertion, String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if jwt.len() > 8192 {
        return Err("the assertion is longer than 8192 bytes".into());
    }
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("the assertion is not a compact JWT (three dot-separated parts)".into());
    };
    let json = |part: &str, what: &str| -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let bytes = b64.decode(part).map_err(|_| format!("the assertion's {what} is not base64url"))?;
        match serde_json::from_slice(&bytes) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            _ => Err(format!("the assertion's {what} is not a JSON object")),
        }
    };
    let h = json(header, "header")?;
    if h.get("alg").and_then(|a| a.as_str()) != Some("EdDSA") {
        return Err("the assertion's alg is not EdDSA".into());
    }
    if h.contains_key("crit") {
        return Err("the assertion has critical header parameters".into());
    }
    let claims = json(payload, "claims")?;
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
    // `iss` only chooses the key; nothing else is read before the signature has been checked.
    let iss = text("iss").ok_or("the assertion has no iss")?;
    let caller = client_key(iss)?;
    let sig = b64.decode(signature).map_err(|_| "the assertion's signature is not base64url")?;
    let signed = &jwt.as_bytes()[..header.len() + 1 + payload.len()];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, caller)
        .verify(signed, &sig)
        .map_err(|_| "the assertion's signature does not verify with the key its iss names")?;
    if text("sub") != Some(iss) {
        return Err("the assertion's sub is not its iss (the client id)".into());
    }
    let auds: Vec<&str> = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => return Err("the assertion has no aud".into()),
    };
    let want = issuer_path(pod);
    let aud = auds
        .iter()
        .find(|a| a.starts_with("https://") && (a.ends_with(&want) || a.ends_with(&format!("{want}/token"))))
        .ok_or_else(|| format!("the assertion's audience is not an authorization server of pod {pod:?}"))?;
    let number = |name: &str| claims.get(name).and_then(|v| v.as_u64()).ok_or(format!("the assertion has no {name}"));
    let (iat, exp) = (number("iat")?, number("exp")?);
    if exp <= iat {
        return Err("the assertion expires before it was issued".into());
    }
    if exp - iat > MAX_DELEGATION_S {
        return Err(format!("the assertion is valid for {} s; at most {MAX_DELEGATION_S} s are accepted", exp - iat));
    }
    Ok(Assertion { caller, iat, exp, aud: aud.to_string(), jti: text("jti").map(str::to_string) })
}

impl Request {
    /// The bytes the caller signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        [REQUEST_DOMAIN, &cbor::encode(self)].concat()
    }

    /// The caller's key, if it is 32 bytes.
    pub fn caller_key(&self) -> Option<[u8; 32]> {
        self.caller.as_slice().try_into().ok()
    }

    /// The bytes a delegate signs: the request and the caller's assertion.
    pub fn delegated_signing_bytes(&self, assertion: &str) -> Vec<u8> {
        [DELEGATED_DOMAIN, &cbor::encode(&(self, assertion))].concat()
    }

    /// Signs it with the caller's key pair (whose public key must be `caller`).
    pub fn sign(self, key: &ring::signature::Ed25519KeyPair) -> SignedRequest {
        let signature = ByteBuf::from(key.sign(&self.signing_bytes()).as_ref().to_vec());
        SignedRequest { request: self, signature, delegation: None }
    }

    /// Signs it as the caller's delegate, under the caller's client assertion.
    pub fn sign_delegated(self, assertion: String, key: &ring::signature::Ed25519KeyPair) -> SignedRequest {
        use ring::signature::KeyPair;
        let signature = ByteBuf::from(key.sign(&self.delegated_signing_bytes(&assertion)).as_ref().to_vec());
        let delegate = ByteBuf::from(key.public_key().as_ref().to_vec());
        SignedRequest { request: self, signature, delegation: Some(Delegation { assertion, delegate }) }
    }
}

impl SignedRequest {
    /// Canonical CBOR: what is sent and what is hashed.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes the canonical encoding and nothing else (at most [`MAX_REQUEST_LEN`] bytes).
    pub fn decode(bytes: &[u8]) -> Result<SignedRequest, String> {
        cbor::decode(bytes, "signed request", MAX_REQUEST_LEN).map_err(|e| e.to_string())
    }

    /// The request hash: SHA-256 of the canonical encoding.
    pub fn hash_of(bytes: &[u8]) -> Hash {
        Hash::digest(bytes)
    }

    /// Checks what needs no state: key and nonce shape, the signature over the raw request bytes, the pod, and
    /// that `issued_at_ms` is within the window around `now_ms` (at most [`MAX_AGE_MS`] old, at most
    /// [`MAX_AHEAD_MS`] ahead). Returns the caller's key.
    pub fn verify(&self, pod: &str, now_ms: u64) -> Result<[u8; 32], String> {
        self.check(pod, now_ms, true)
    }

    /// The delegate's key, if a node signed on the caller's behalf (checked by [`SignedRequest::verify`]; whether
    /// it is a validator of the pod is the caller's check).
    pub fn delegate_key(&self) -> Option<[u8; 32]> {
        self.delegation.as_ref().and_then(|d| d.delegate.as_slice().try_into().ok())
    }

    /// [`SignedRequest::verify`] without the signature, for a request whose signature this process has already
    /// verified over these very bytes (the signature cannot have changed; the clock has).
    pub fn verify_verified(&self, pod: &str, now_ms: u64) -> Result<[u8; 32], String> {
        self.check(pod, now_ms, false)
    }

    /// Whether the request is its caller's: key and nonce shape, the signature over the raw request bytes (the
    /// caller's, or for a delegated request the delegate's with the caller's valid assertion), and nothing that
    /// depends on the pod or the time. Returns the caller's key. A request that fails this proves nothing about
    /// who sent it, so nothing may be recorded against the key it names.
    pub fn authenticate(&self) -> Result<[u8; 32], String> {
        self.authenticate_with(true)
    }

    /// [`SignedRequest::authenticate`] without the Ed25519 signature check, for bytes whose signature this
    /// process has already verified.
    pub fn authenticate_verified(&self) -> Result<[u8; 32], String> {
        self.authenticate_with(false)
    }

    fn check(&self, pod: &str, now_ms: u64, signature: bool) -> Result<[u8; 32], String> {
        let key = self.authenticate_with(signature)?;
        let r = &self.request;
        if r.pod != pod {
            return Err(format!("the request is for pod {:?}, not {pod:?}", r.pod));
        }
        if r.issued_at_ms > now_ms + MAX_AHEAD_MS {
            return Err(format!(
                "issued {} s in the future (check the caller's clock)",
                (r.issued_at_ms - now_ms) / 1000
            ));
        }
        if now_ms.saturating_sub(r.issued_at_ms) > MAX_AGE_MS {
            return Err(format!(
                "issued {} s ago; requests are accepted for {} s",
                (now_ms - r.issued_at_ms) / 1000,
                MAX_AGE_MS / 1000
            ));
        }
        Ok(key)
    }

    fn authenticate_with(&self, signature: bool) -> Result<[u8; 32], String> {
        let r = &self.request;
        let key = r.caller_key().ok_or_else(|| format!("the caller key is {} bytes, not 32", r.caller.len()))?;
        if !NONCE_LEN.contains(&r.nonce.len()) {
            return Err(format!("the nonce is {} bytes; it must be 16 to 64", r.nonce.len()));
        }
        let ed25519 = |k: [u8; 32]| ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, k);
        match &self.delegation {
            None if signature && ed25519(key).verify(&r.signing_bytes(), &self.signature).is_err() => {
                return Err("the signature does not verify with the caller's key".into());
            }
            None => {}
            Some(d) => {
                let delegate = self
                    .delegate_key()
                    .ok_or_else(|| format!("the delegate key is {} bytes, not 32", d.delegate.len()))?;
                if signature
                    && ed25519(delegate).verify(&r.delegated_signing_bytes(&d.assertion), &self.signature).is_err()
                {
                    return Err("the signature does not verify with the delegate's key".into());
                }
                let a = verify_assertion(&d.assertion, &r.pod).map_err(|why| format!("the delegation: {why}"))?;
                if a.caller != key {
                    return Err("the delegation: the assertion is another caller's".into());
                }
                if r.issued_at_ms.saturating_add(MAX_AHEAD_MS) < a.iat.saturating_mul(1000)
                    || r.issued_at_ms > a.exp.saturating_mul(1000)
                {
                    return Err("the delegation: the request was not made while the assertion was valid".into());
                }
            }
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    const NOW: u64 = 1_764_000_000_000;

    fn key() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap()
    }

    fn request(k: &Ed25519KeyPair) -> Request {
        Request {
            pod: "eu".into(),
            applet: "notes".into(),
            method: "put".into(),
            args: ByteBuf::from(br#"{"key":"a","value":"b"}"#.to_vec()),
            nonce: ByteBuf::from(vec![9; 16]),
            issued_at_ms: NOW,
            caller: ByteBuf::from(k.public_key().as_ref().to_vec()),
        }
    }

    #[test]
    fn a_signed_request_round_trips_and_verifies() {
        let k = key();
        let s = request(&k).sign(&k);
        let bytes = s.encode();
        let back = SignedRequest::decode(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.verify("eu", NOW + 1000).unwrap(), <[u8; 32]>::try_from(k.public_key().as_ref()).unwrap());
    }

    #[test]
    fn every_field_is_covered_by_the_signature() {
        let k = key();
        let good = request(&k).sign(&k);
        type Mutation = Box<dyn Fn(&mut Request)>;
        let mutations: Vec<(&str, Mutation)> = vec![
            ("pod", Box::new(|r| r.pod = "us".into())),
            ("applet", Box::new(|r| r.applet = "hash".into())),
            ("method", Box::new(|r| r.method = "get".into())),
            ("args", Box::new(|r| r.args[0] ^= 1)),
            ("nonce", Box::new(|r| r.nonce[0] ^= 1)),
            ("issued_at_ms", Box::new(|r| r.issued_at_ms += 1)),
        ];
        for (field, m) in mutations {
            let mut s = good.clone();
            m(&mut s.request);
            let pod = s.request.pod.clone();
            let err = s.verify(&pod, NOW).expect_err(field);
            assert!(err.contains("signature"), "{field}: {err}");
        }
        let mut s = good.clone();
        s.signature[5] ^= 0x10;
        assert!(s.verify("eu", NOW).unwrap_err().contains("signature"));
        // Another caller's key with the same signature.
        let mut s = good.clone();
        let other = Ed25519KeyPair::from_seed_unchecked(&[8; 32]).unwrap();
        s.request.caller = ByteBuf::from(other.public_key().as_ref().to_vec());
        assert!(s.verify("eu", NOW).unwrap_err().contains("signature"));
    }

    #[test]
    fn wrong_pod_stale_future_and_bad_shapes_are_refused() {
        let k = key();
        let s = request(&k).sign(&k);
        assert!(s.verify("us", NOW).unwrap_err().contains("pod"));
        assert!(s.verify("eu", NOW + MAX_AGE_MS + 1).unwrap_err().contains("ago"));
        assert!(s.verify("eu", NOW - MAX_AHEAD_MS - 1).unwrap_err().contains("future"));
        let mut r = request(&k);
        r.nonce = ByteBuf::from(vec![1; 8]);
        assert!(r.sign(&k).verify("eu", NOW).unwrap_err().contains("nonce"));
        let mut r = request(&k);
        r.caller = ByteBuf::from(vec![1; 31]);
        assert!(r.sign(&k).verify("eu", NOW).unwrap_err().contains("32"));
    }

    #[test]
    fn only_the_canonical_encoding_decodes() {
        let k = key();
        let bytes = request(&k).sign(&k).encode();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(SignedRequest::decode(&trailing).is_err());
        assert!(SignedRequest::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(SignedRequest::decode(b"not cbor").is_err());
        // The same request with the map keys in another order is not canonical.
        let v: ciborium::Value = ciborium::from_reader(bytes.as_slice()).unwrap();
        let ciborium::Value::Map(mut m) = v else { panic!() };
        m.reverse();
        let mut re = Vec::new();
        ciborium::into_writer(&ciborium::Value::Map(m), &mut re).unwrap();
        assert!(SignedRequest::decode(&re).is_err());
    }

    #[test]
    fn a_tag_or_another_type_for_a_field_is_not_the_same_request() {
        // Found by the fuzz target: `args` wrapped in tag 7 decoded, re-encoded without it, and so verified
        // under another request hash (a replay the hash alone would miss).
        let k = key();
        let good = request(&k).sign(&k).encode();
        let args = ciborium::Value::Bytes(br#"{"key":"a","value":"b"}"#.to_vec());
        let at = good.windows(3).position(|w| w == [0x64, b'a', b'r']).unwrap() + 5;
        assert_eq!(good[at], 0x57, "the args byte string follows its key");
        let mut tagged = good[..at].to_vec();
        tagged.push(0xc7);
        tagged.extend_from_slice(&good[at..]);
        let e = SignedRequest::decode(&tagged).unwrap_err();
        assert!(e.contains("canonical"), "{e}");
        // The same bytes as an array of integers.
        let ciborium::Value::Bytes(b) = args else { unreachable!() };
        let mut as_array = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Array(b.iter().map(|x| ciborium::Value::Integer((*x).into())).collect()),
            &mut as_array,
        )
        .unwrap();
        let end = at + 1 + b.len();
        let mut arrayed = good[..at].to_vec();
        arrayed.extend_from_slice(&as_array);
        arrayed.extend_from_slice(&good[end..]);
        assert!(SignedRequest::decode(&arrayed).is_err());
        assert!(SignedRequest::decode(&good).is_ok());
    }

    /// A client assertion as an OAuth client makes it: `claims` signed with `k`'s key, `alg` EdDSA.
    fn jwt(k: &Ed25519KeyPair, header: &str, claims: serde_json::Value) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signed = format!("{}.{}", b64.encode(header), b64.encode(claims.to_string()));
        let sig = k.sign(signed.as_bytes());
        format!("{signed}.{}", b64.encode(sig.as_ref()))
    }

    fn claims(k: &Ed25519KeyPair) -> serde_json::Value {
        let id = client_id(&k.public_key().as_ref().try_into().unwrap());
        serde_json::json!({
            "iss": id, "sub": id, "aud": "https://127.0.0.1:8443/oauth/eu",
            "iat": NOW / 1000 - 10, "exp": NOW / 1000 + 290, "jti": "x"
        })
    }

    const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT"}"#;

    fn node() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[0x11; 32]).unwrap()
    }

    #[test]
    fn a_delegated_request_verifies_and_round_trips() {
        let (k, n) = (key(), node());
        let s = request(&k).sign_delegated(jwt(&k, HEADER, claims(&k)), &n);
        let bytes = s.encode();
        let back = SignedRequest::decode(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.verify("eu", NOW).unwrap().as_slice(), k.public_key().as_ref());
        assert_eq!(back.delegate_key().unwrap().as_slice(), n.public_key().as_ref());
        // A request the caller signed itself encodes without a delegation field: the pinned format is unchanged.
        assert!(request(&k).sign(&k).delegation.is_none());
    }

    #[test]
    fn every_delegation_check_refuses_its_case() {
        let (k, n) = (key(), node());
        let good = jwt(&k, HEADER, claims(&k));
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims(&k);
            edit(&mut c);
            request(&k).sign_delegated(jwt(&k, HEADER, c), &n)
        };
        let refused = |s: SignedRequest, want: &str| {
            let e = s.verify("eu", NOW).expect_err(want);
            assert!(e.contains(want), "want {want:?}, got {e:?}");
        };
        // The delegate's signature covers the request and the assertion.
        let mut s = request(&k).sign_delegated(good.clone(), &n);
        s.request.args[0] ^= 1;
        refused(s, "delegate's key");
        let mut s = request(&k).sign_delegated(good.clone(), &n);
        s.delegation.as_mut().unwrap().assertion = jwt(&k, HEADER, {
            let mut c = claims(&k);
            c["jti"] = "y".into();
            c
        });
        refused(s, "delegate's key");
        let mut s = request(&k).sign_delegated(good.clone(), &n);
        s.signature[3] ^= 1;
        refused(s, "delegate's key");
        // Another node's key under the same signature.
        let mut s = request(&k).sign_delegated(good.clone(), &n);
        s.delegation.as_mut().unwrap().delegate = ByteBuf::from(vec![0x22; 32]);
        refused(s, "delegate's key");
        // The assertion: a flipped bit in its signature or claims, another signer, another caller.
        let flip = |at: usize| {
            let mut b = good.clone().into_bytes();
            b[at] ^= 1;
            request(&k).sign_delegated(String::from_utf8(b).unwrap(), &n)
        };
        refused(flip(good.len() - 3), "assertion's signature");
        refused(flip(good.find('.').unwrap() + 5), "assertion");
        let other = Ed25519KeyPair::from_seed_unchecked(&[8; 32]).unwrap();
        refused(request(&k).sign_delegated(jwt(&other, HEADER, claims(&k)), &n), "assertion's signature");
        refused(request(&k).sign_delegated(jwt(&other, HEADER, claims(&other)), &n), "another caller's");
        // Header and claims.
        refused(request(&k).sign_delegated(jwt(&k, r#"{"alg":"RS256"}"#, claims(&k)), &n), "EdDSA");
        refused(request(&k).sign_delegated(jwt(&k, r#"{"alg":"none"}"#, claims(&k)), &n), "EdDSA");
        refused(request(&k).sign_delegated(jwt(&k, r#"{"alg":"EdDSA","crit":["x"]}"#, claims(&k)), &n), "critical");
        refused(with(&|c| c["sub"] = "ed25519:00".into()), "sub");
        refused(with(&|c| c["aud"] = "https://127.0.0.1:8443/oauth/us".into()), "audience");
        refused(with(&|c| c["aud"] = "http://127.0.0.1:8443/oauth/eu".into()), "audience");
        refused(with(&|c| c["aud"] = serde_json::json!(["https://x/oauth/eux"])), "audience");
        refused(
            with(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            "no aud",
        );
        refused(
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "no exp",
        );
        refused(with(&|c| c["exp"] = (NOW / 1000 + 3600).into()), "at most");
        refused(with(&|c| c["exp"] = (NOW / 1000 - 20).into()), "expires before");
        // The request made outside the assertion's lifetime.
        refused(with(&|c| c["exp"] = (NOW / 1000 - 5).into()), "while the assertion was valid");
        refused(
            with(&|c| {
                c["iat"] = (NOW / 1000 + 60).into();
                c["exp"] = (NOW / 1000 + 100).into();
            }),
            "while",
        );
        // An array audience naming the pod is accepted, and so is the token endpoint as audience.
        assert!(with(&|c| c["aud"] = serde_json::json!(["x", "https://h/oauth/eu"])).verify("eu", NOW).is_ok());
        assert!(with(&|c| c["aud"] = "https://h:1/oauth/eu/token".into()).verify("eu", NOW).is_ok());
        // Not a JWT at all.
        refused(request(&k).sign_delegated("a.b".into(), &n), "compact JWT");
        refused(request(&k).sign_delegated("!.!.!".into(), &n), "base64url");
        assert!(client_key("ed25519:zz").is_err() && client_key(&"ab".repeat(32)).is_err());
        // What client_assertion makes verifies.
        let made = client_assertion(&k, "https://h/oauth/eu", NOW / 1000, 300, "j");
        assert_eq!(verify_assertion(&made, "eu").unwrap().caller.as_slice(), k.public_key().as_ref());
    }

    /// The delegated format is pinned too: the fixed request signed by a node (seed 0x11s) under a fixed client
    /// assertion (its own vector). `SIGIL_WRITE_VECTORS=1` rewrites both.
    #[test]
    fn the_delegated_request_and_assertion_formats_are_pinned() {
        let (k, n) = (key(), node());
        let assertion = client_assertion(&k, "https://127.0.0.1:8443/oauth/eu", NOW / 1000 - 10, 300, "x");
        let bytes = request(&k).sign_delegated(assertion.clone(), &n).encode();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/conformance/");
        let (jwt_path, req_path) = (format!("{dir}client-assertion.jwt"), format!("{dir}delegated-request.cbor.hex"));
        if std::env::var_os("SIGIL_WRITE_VECTORS").is_some() {
            std::fs::write(&jwt_path, assertion.clone() + "\n").unwrap();
            std::fs::write(&req_path, hex::encode(&bytes) + "\n").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&jwt_path).unwrap().trim(), assertion);
        assert_eq!(std::fs::read_to_string(&req_path).unwrap().trim(), hex::encode(&bytes));
        let back = SignedRequest::decode(&bytes).unwrap();
        assert_eq!(back.verify("eu", NOW).unwrap().as_slice(), k.public_key().as_ref());
    }

    /// The format is pinned: a fixed request (key seed 7s, nonce 9s) encodes to the committed conformance vector,
    /// which other implementations (and the fuzz corpus) use. `SIGIL_WRITE_VECTORS=1` rewrites it.
    #[test]
    fn the_signed_request_format_is_pinned() {
        let k = key();
        let bytes = request(&k).sign(&k).encode();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/conformance/signed-request.cbor.hex");
        if std::env::var_os("SIGIL_WRITE_VECTORS").is_some() {
            std::fs::write(path, hex::encode(&bytes) + "\n").unwrap();
        }
        let want = std::fs::read_to_string(path).unwrap();
        assert_eq!(hex::encode(&bytes), want.trim());
        assert_eq!(
            SignedRequest::hash_of(&bytes).to_hex(),
            crate::Hash::digest(&hex::decode(want.trim()).unwrap()).to_hex()
        );
    }
}
