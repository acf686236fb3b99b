//! A pod on one machine: `n` nodes on 127.0.0.1 whose identity seeds are fixed and published. Insecure by
//! construction (anyone can sign as these nodes): for the devnet, the tests and the benchmarks only. What only
//! tests and benchmarks use (the probe applet, invocations, links that can be cut) is in `testing`.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use serde_bytes::ByteBuf;
use sigil_ledger::checkpoint::Validator;
use sigil_ledger::entry::{Genesis, Member};
use sigil_ledger::Entry;

use super::{peer_id, public_key, PodConfig};

/// The published seed of the local pod's governance member `ops`.
pub const MEMBER_SEED: [u8; 32] = [0xee; 32];

/// The published identity seed of local node `i`.
pub fn seed(i: usize) -> [u8; 32] {
    [i as u8 + 1; 32]
}

/// The name of local node `i`.
pub fn name(i: usize) -> String {
    format!("node-{i}")
}

/// A free TCP port on 127.0.0.1 (free when asked; a race with other programs is possible).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port on 127.0.0.1")
}

/// The simulated launch measurement of a local node's image.
pub const MEASUREMENT: [u8; 48] = [0x5a; 48];

/// The policy of a local pod: sim evidence (insecure) of [`MEASUREMENT`] only, and validators re-execute the
/// invocations of deterministic applets.
pub fn policy() -> String {
    format!(
        "[sim]\nallow = true\nmeasurements = [\"{}\"]\n\n[execution]\nreplay_deterministic = true\n",
        hex::encode(MEASUREMENT)
    )
}

/// Sim evidence of local node `i` for `pod`.
pub fn evidence(pod: &str, i: usize) -> Vec<u8> {
    super::admission::sim_evidence(pod, &public_key(&seed(i)), MEASUREMENT)
}

/// A sim TEE backend (insecure) for a local node of `pod`: evidence of [`MEASUREMENT`] over the REPORT_DATA it is
/// given, what a local node re-attests with.
pub fn sim_attester(pod: &str) -> crate::reattest::Attester {
    let pod = pod.to_string();
    crate::reattest::Attester::new(move |rd| Ok(crate::admission::sim_bundle(&pod, MEASUREMENT, *rd, None)))
}

/// The genesis of a local pod of `n` validators.
pub fn genesis(pod: &str, n: usize) -> Entry {
    Entry::Genesis(Genesis {
        pod: pod.into(),
        jurisdiction: "local".into(),
        created_at: 1_764_000_000,
        validators: (0..n).map(|i| Validator { name: name(i), public_key: public_key(&seed(i)).to_vec() }).collect(),
        evidence: (0..n).map(|i| ByteBuf::from(evidence(pod, i))).collect(),
        members: vec![Member { name: "ops".into(), public_key: ByteBuf::from(public_key(&MEMBER_SEED).to_vec()) }],
        threshold: 1,
        policy: policy(),
    })
}

/// Configurations of a local pod of `n` nodes, data under `dir/node-i`, each connected to all others, on free
/// ports.
pub fn configs(pod: &str, n: usize, dir: &Path) -> Vec<PodConfig> {
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    configs_on(pod, &ports, dir)
}

/// Configurations of a local pod whose node `i` listens on 127.0.0.1:`ports[i]`.
pub fn configs_on(pod: &str, ports: &[u16], dir: &Path) -> Vec<PodConfig> {
    let addrs: Vec<(std::net::Ipv4Addr, u16)> = ports.iter().map(|p| (std::net::Ipv4Addr::LOCALHOST, *p)).collect();
    configs_at(pod, &addrs, dir)
}

/// Configurations of a simulated pod whose node `i` listens on `addrs[i]` (hosts of their own: network
/// namespaces, `infra/local`).
pub fn configs_at(pod: &str, addrs: &[(std::net::Ipv4Addr, u16)], dir: &Path) -> Vec<PodConfig> {
    let n = addrs.len();
    (0..n)
        .map(|i| PodConfig {
            name: name(i),
            seed: seed(i),
            data_dir: dir.join(name(i)),
            listen: format!("/ip4/{}/tcp/{}", addrs[i].0, addrs[i].1),
            peers: (0..n)
                .filter(|j| *j != i)
                .map(|j| format!("/ip4/{}/tcp/{}/p2p/{}", addrs[j].0, addrs[j].1, peer_id(&seed(j))))
                .collect(),
            genesis: genesis(pod, n),
            timeouts: PodConfig::local_timeouts(),
            idle_block: Duration::from_millis(100),
            idle_interval: super::IDLE_INTERVAL,
            replay: Default::default(),
            mempool_capacity: 100_000,
            attester: Default::default(),
            fault: super::Fault::None,
        })
        .collect()
}
