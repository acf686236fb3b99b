//! # infra: confidential VMs, images and reference measurements
//!
//! **Not implemented yet** (issue "Infra for operators"). This crate will compute reference measurements for
//! Sigil images and drive the provisioning of SEV-SNP / TDX confidential VMs on AWS, GCP and Azure, and the
//! local devnet.
