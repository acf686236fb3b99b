//! Re-execution (#17 item 10): where the pod's policy asks (the local pods' does), a validator runs each invocation
//! of a deterministic applet again before it accepts it, and refuses one whose executor lied about its outcome,
//! output, fuel or reads (`sigil_pod::replay`). The node here checks invocations signed by its own key but made
//! outside it, as it checks its peers' (`PodNode::submit_signed`), with its own wasm runtime.

use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_bytes::ByteBuf;
use sigil::service::RunningNode;
use sigil_ledger::entry::Invocation;
use sigil_ledger::{Entry, Hash};
use sigil_pod::{local, Attachments, LedgerState, Rejection};
use sigil_runtime::{Call, Runtime, RuntimeConfig, WriteSet};

use crate::support::*;

/// What node 0 of `pod-h` records for `applet.method(args)` by `caller` when it runs it: the invocation, the
/// signed request and the write set, from a runtime of the test's own over the node's ledger.
fn execute(
    n: &RunningNode,
    rt: &Runtime,
    caller: &Ed25519KeyPair,
    (applet, method, args): (&str, &str, &str),
    nonce: u8,
) -> (Invocation, Vec<u8>, WriteSet) {
    let e = sigil_example_applets::example(applet);
    let manifest = sigil_runtime::Manifest::from_toml(e.manifest, e.wasm).unwrap();
    let loaded = rt.load(&manifest, e.wasm).unwrap();
    let request = crate::node::request(caller, "pod-h", applet, method, args, nonce).encode();
    let key: [u8; 32] = caller.public_key().as_ref().try_into().unwrap();
    let call = Call {
        request_hash: sigil_ledger::request::SignedRequest::hash_of(&request),
        caller: key,
        method,
        input: args.as_bytes(),
        now_ms: now_ms(),
    };
    let state = std::sync::Arc::new(LedgerState::new(n.service.node.ledger()));
    let exec = rt.invoke(&loaded, &call, state).unwrap();
    let r = exec.receipt;
    let inv = Invocation {
        request_hash: r.request_hash,
        caller: ByteBuf::from(key.to_vec()),
        applet: applet.into(),
        method: method.into(),
        code_digest: r.code_digest,
        input_hash: r.input_hash,
        output_hash: r.output_hash,
        write_set_hash: r.write_set_hash,
        executor: local::name(0),
        executor_attestation: 0, // a genesis validator's evidence is in the genesis
        policy: Some(0),
        outcome: r.outcome,
        fuel_used: r.fuel_used,
        at_ms: r.at_ms,
        delegate: None,
    };
    (inv, request, exec.write_set)
}

/// Submits `inv` with its request and write set, signed with node 0's key as its receipts are.
fn submit(
    n: &RunningNode,
    inv: Invocation,
    request: &[u8],
    ws: &WriteSet,
) -> Result<tokio::sync::oneshot::Receiver<sigil_pod::Committed>, Rejection> {
    let entry = Entry::Invocation(inv);
    let key = Ed25519KeyPair::from_seed_unchecked(&local::seed(0)).unwrap();
    let signature = key.sign(&sigil_pod::receipt_bytes(&entry.leaf_hash())).as_ref().to_vec();
    let a = Attachments { signature, request: request.to_vec(), write_set: ws.encode(), ..Default::default() };
    n.service.node.submit_signed(entry, a)
}

fn refused(r: Result<tokio::sync::oneshot::Receiver<sigil_pod::Committed>, Rejection>, what: &str) {
    match r {
        Ok(_) => panic!("{what}: accepted"),
        Err(why) => {
            let why = why.to_string();
            assert!(why.contains("re-executed, it differs"), "{what}: {why}");
            assert!(why.contains(what), "{what}: {why}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_re_executes_a_deterministic_applet_and_refuses_what_its_executor_misstated() {
    let dir = tempdir();
    let (n, _) = crate::hostile::node(dir.path(), Default::default()).await;
    crate::hostile::deploy_example(&n, "hash").await;
    crate::hostile::deploy_example(&n, "notes").await;
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let caller = Ed25519KeyPair::from_seed_unchecked(&[0x7e; 32]).unwrap();

    // As executed, it re-executes to the same receipt and commits.
    let (inv, req, ws) = execute(&n, &rt, &caller, ("notes", "put", r#"{"key":"k","value":"v1"}"#), 1);
    let rx = submit(&n, inv, &req, &ws).expect("an honest invocation re-executes to what it recorded");
    tokio::time::timeout(std::time::Duration::from_secs(30), rx).await.unwrap().unwrap();

    // Each misstatement, signed by the executor, is refused by what the replay shows.
    let (inv, req, ws) = execute(&n, &rt, &caller, ("hash", "sha256", "abc"), 2);
    let lie = |f: &dyn Fn(&mut Invocation)| {
        let mut i = inv.clone();
        f(&mut i);
        i
    };
    refused(submit(&n, lie(&|i| i.output_hash = Hash::digest(b"another output")), &req, &ws), "output hash");
    refused(submit(&n, lie(&|i| i.fuel_used += 1), &req, &ws), "fuel");
    refused(submit(&n, lie(&|i| i.outcome = "error: made up".into()), &req, &ws), "ended");

    // A write the applet did not make: the executor's write set (and its hash) name a note `get` never wrote.
    let (inv, req, mut ws) = execute(&n, &rt, &caller, ("notes", "get", r#"{"key":"k"}"#), 3);
    assert!(ws.writes.is_empty() && !ws.reads.is_empty(), "get reads and writes nothing: {ws:?}");
    ws.writes.insert(("notes".into(), b"k".to_vec()), Some(b"forged".to_vec()));
    let forged = Invocation { write_set_hash: ws.hash(), ..inv.clone() };
    refused(submit(&n, forged, &req, &ws), "write set");
    // A read hidden from the record: the replay sees only what was recorded, so the note is absent to it and
    // the run ends otherwise.
    let (inv, req, mut ws) = execute(&n, &rt, &caller, ("notes", "get", r#"{"key":"k"}"#), 4);
    ws.reads.clear();
    let hidden = Invocation { write_set_hash: ws.hash(), ..inv };
    refused(submit(&n, hidden, &req, &ws), "the replay ended \"error: no note");

    // The honest `get` commits, and so does an honest failure: it keeps what it read on the record (here that the
    // key is absent), and the replay ends the same way.
    let (inv, req, ws) = execute(&n, &rt, &caller, ("notes", "get", r#"{"key":"k"}"#), 5);
    let rx = submit(&n, inv, &req, &ws).expect("an honest read re-executes");
    tokio::time::timeout(std::time::Duration::from_secs(30), rx).await.unwrap().unwrap();
    let (inv, req, ws) = execute(&n, &rt, &caller, ("notes", "get", r#"{"key":"absent"}"#), 6);
    assert!(inv.outcome.starts_with("error: no note") && ws.reads.len() == 1, "{} {ws:?}", inv.outcome);
    let rx = submit(&n, inv.clone(), &req, &ws).expect("an honest failure re-executes");
    tokio::time::timeout(std::time::Duration::from_secs(30), rx).await.unwrap().unwrap();
    // A run recorded as past its deadline is not replayed, but it has no output.
    let (inv, req, ws) = execute(&n, &rt, &caller, ("hash", "sha256", "abc"), 7);
    let late = Invocation { outcome: "deadline".into(), ..inv };
    match submit(&n, late, &req, &ws) {
        Err(why) => assert!(why.to_string().contains("has no output"), "{why}"),
        Ok(_) => panic!("a deadline with an output: accepted"),
    }
    n.stop().await;
}
