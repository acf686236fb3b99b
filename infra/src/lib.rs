//! # infra: provisioning files for operators
//!
//! `infra/` is Terraform (AWS, GCP, Azure confidential VMs), cloud-init, the node's systemd unit, their offline
//! checks (`infra/check.py`) and the network-fault test (`infra/local/faults.sh`); see `docs/infra.md`. It holds no
//! Rust: reference measurements are in `attest::measure` (`sigil measure snp`), beside the verifier that compares
//! against them. This crate exists only as the directory's place in the workspace.
