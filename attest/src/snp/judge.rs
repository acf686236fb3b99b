//! The checks on authenticated fields, run only after the report's signature verified: reserved fields, the TCB
//! and chip-id bindings to the certificate, and the `[snp]` policy.

use serde_json::json;

use crate::policy::{SnpPolicy, Version};
use crate::result::Outcome;

use super::chain::VerifiedLeaf;
use super::report::{platform_info_bits as pi, policy_bits as pb, Product, SnpReport, Tcb};

/// The checks on authenticated fields: structure, bindings to the certificate, and policy.
pub(super) fn judge(
    out: &mut Outcome,
    report: &SnpReport,
    leaf: &VerifiedLeaf,
    policy: &SnpPolicy,
    expected_rd: Option<&[u8]>,
) {
    let product = leaf.product;
    let reported = Tcb::decode(report.reported_tcb(), product);
    let current = Tcb::decode(report.current_tcb(), product);
    let committed = Tcb::decode(report.committed_tcb(), product);
    let launch = Tcb::decode(report.launch_tcb(), product);
    let c = &mut out.checks;
    let p = report.policy();

    // Structure.
    let mut structural = report.nonzero_reserved();
    if p & pb::RESERVED_ONE == 0 {
        structural.push("guest policy bit 17 (reserved, must be one) is zero".into());
    }
    if p & pb::MBZ != 0 {
        structural.push(format!("guest policy {p:#x} sets reserved bits 63:26"));
    }
    if report.signer_info() & !0x1F != 0 {
        structural.push(format!("signer info {:#x} sets reserved bits", report.signer_info()));
    }
    if let (Some((fam, model, _)), Some(from_cert)) =
        (report.cpuid(), Product::from_product_name(&leaf.ext.product_name))
    {
        if Product::from_cpuid(fam, model) != Some(from_cert) {
            structural.push("CPUID and certificate productName disagree".into());
        }
    }
    c.record("snp.reserved_fields", if structural.is_empty() { Ok(()) } else { Err(structural.join("; ")) });

    // Bindings of the report to its certificate.
    c.record(
        "snp.tcb_binding",
        if report.reported_tcb() == leaf.ext.tcb_raw {
            Ok(())
        } else {
            Err(format!("REPORTED_TCB ({reported}) differs from the certificate's TCB ({})", leaf.ext.tcb))
        },
    );
    match &leaf.ext.hwid {
        None => c.skip("snp.chip_id_binding", format!("VLEK issued to {}", leaf.ext.csp_id.as_deref().unwrap_or("?"))),
        Some(_) if report.chip_id().iter().all(|&b| b == 0) && report.chip_id_masked() => {
            c.skip("snp.chip_id_binding", "CHIP_ID is masked by the guest (MASK_CHIP_ID)")
        }
        Some(hwid) => {
            let chip = report.chip_id();
            let ok = chip[..hwid.len()] == hwid[..] && chip[hwid.len()..].iter().all(|&b| b == 0);
            c.record(
                "snp.chip_id_binding",
                if ok {
                    Ok(())
                } else {
                    Err("CHIP_ID differs from the VCEK's hwID (the VCEK belongs to another chip)".into())
                },
            );
        }
    }

    // Policy.
    c.record(
        "snp.policy.debug",
        if p & pb::DEBUG != 0 && !policy.allow_debug {
            Err("guest policy allows debugging (DEBUG=1): the host can read and write guest memory".into())
        } else {
            Ok(())
        },
    );
    c.record(
        "snp.policy.migrate_ma",
        if p & pb::MIGRATE_MA != 0 && !policy.allow_migrate_ma {
            Err("guest policy allows a migration agent (MIGRATE_MA=1)".into())
        } else {
            Ok(())
        },
    );
    c.record(
        "snp.policy.smt",
        if !policy.allow_smt && (p & pb::SMT != 0 || report.platform_info() & pi::SMT_EN != 0) {
            Err("SMT is allowed by the guest policy or enabled on the platform, and the policy forbids SMT".into())
        } else {
            Ok(())
        },
    );
    c.record(
        "snp.policy.vmpl",
        if report.vmpl() == policy.vmpl {
            Ok(())
        } else {
            Err(format!("VMPL {} is not the required {}", report.vmpl(), policy.vmpl))
        },
    );
    let mut tcb_problems = Vec::new();
    if !reported.at_least(&policy.min_tcb) {
        tcb_problems.push(format!("REPORTED_TCB ({reported}) is below the minimum ({})", policy.min_tcb));
    }
    if !launch.at_least(&policy.min_tcb) {
        tcb_problems.push(format!("LAUNCH_TCB ({launch}) is below the minimum ({})", policy.min_tcb));
    }
    if !current.at_least(&reported) {
        tcb_problems.push(format!("REPORTED_TCB ({reported}) is above CURRENT_TCB ({current})"));
    }
    c.record("snp.policy.min_tcb", if tcb_problems.is_empty() { Ok(()) } else { Err(tcb_problems.join("; ")) });
    let provisional =
        report.committed_tcb() != report.current_tcb() || report.committed_version() != report.current_version();
    c.record(
        "snp.policy.committed_tcb",
        if provisional && !policy.allow_provisional_firmware {
            Err(format!("provisional firmware: COMMITTED_TCB ({committed}) differs from CURRENT_TCB ({current}) or the committed firmware version differs from the current one"))
        } else {
            Ok(())
        },
    );
    c.record(
        "snp.policy.guest_svn",
        if report.guest_svn() >= policy.min_guest_svn {
            Ok(())
        } else {
            Err(format!("GUEST_SVN {} is below {}", report.guest_svn(), policy.min_guest_svn))
        },
    );
    if policy.required_mitigations != 0 {
        let r = match (report.launch_mit_vector(), report.current_mit_vector()) {
            (Some(l), Some(cur))
                if l & policy.required_mitigations == policy.required_mitigations
                    && cur & policy.required_mitigations == policy.required_mitigations =>
            {
                Ok(())
            }
            (Some(l), Some(cur)) => Err(format!(
                "mitigation vectors (launch {l:#x}, current {cur:#x}) lack required bits {:#x}",
                policy.required_mitigations
            )),
            _ => Err(format!(
                "report version {} has no mitigation vectors, and the policy requires {:#x}",
                report.version(),
                policy.required_mitigations
            )),
        };
        c.record("snp.policy.mitigations", r);
    }
    let abi = Version { major: (p >> 8) as u8, minor: p as u8 };
    let mut version_problems = Vec::new();
    if let Some(min) = policy.min_abi {
        if abi < min {
            version_problems.push(format!("the guest policy's ABI {abi} is below {min}"));
        }
    }
    if let Some(min) = policy.min_firmware {
        for (which, (major, minor, _)) in
            [("current", report.current_version()), ("committed", report.committed_version())]
        {
            let have = Version { major, minor };
            if have < min {
                version_problems.push(format!("{which} firmware {have} is below {min}"));
            }
        }
    }
    if policy.min_abi.is_some() || policy.min_firmware.is_some() {
        c.record(
            "snp.policy.versions",
            if version_problems.is_empty() { Ok(()) } else { Err(version_problems.join("; ")) },
        );
    }
    if policy.require_single_socket {
        c.record(
            "snp.policy.single_socket",
            if p & pb::SINGLE_SOCKET != 0 {
                Ok(())
            } else {
                Err("the guest policy does not require a single socket".into())
            },
        );
    }
    for (name, list, value) in [
        ("snp.policy.family_id", &policy.family_ids, report.family_id()),
        ("snp.policy.image_id", &policy.image_ids, report.image_id()),
        ("snp.policy.id_key_digest", &policy.id_key_digests, report.id_key_digest()),
        ("snp.policy.author_key_digest", &policy.author_key_digests, report.author_key_digest()),
    ] {
        if !list.is_empty() {
            c.allow_list(name, list, value);
        }
    }
    c.allow_list("snp.policy.measurement", &policy.measurements, report.measurement());
    c.allow_list("snp.policy.host_data", &policy.host_data, report.host_data());
    let want = crate::policy::expected_report_data(expected_rd, &policy.report_data);
    c.report_data("snp.report_data", report.report_data(), want);

    let signing = if leaf.vlek { "vlek" } else { "vcek" };
    out.claim(
        "snp",
        json!({
            "version": report.version(),
            "product": product.name(),
            "signing_key": signing,
            "guest_svn": report.guest_svn(),
            "policy": format!("{p:#x}"),
            "debug": p & pb::DEBUG != 0,
            "vmpl": report.vmpl(),
            "platform_info": format!("{:#x}", report.platform_info()),
            "family_id": hex::encode(report.family_id()),
            "image_id": hex::encode(report.image_id()),
            "host_data": hex::encode(report.host_data()),
            "id_key_digest": hex::encode(report.id_key_digest()),
            "author_key_digest": hex::encode(report.author_key_digest()),
            "abi": format!("{}.{}", (p >> 8) as u8, p as u8),
            "single_socket": p & pb::SINGLE_SOCKET != 0,
            "report_id": hex::encode(report.report_id()),
            "chip_id": hex::encode(report.chip_id()),
            "reported_tcb": reported,
            "current_tcb": current,
            "committed_tcb": committed,
            "launch_tcb": launch,
            "firmware": { "current": fmt_ver(report.current_version()), "committed": fmt_ver(report.committed_version()) },
            "launch_mit_vector": report.launch_mit_vector(),
            "current_mit_vector": report.current_mit_vector(),
            "csp_id": leaf.ext.csp_id,
        }),
    );
}

fn fmt_ver((major, minor, build): (u8, u8, u8)) -> String {
    format!("{major}.{minor}.{build}")
}
