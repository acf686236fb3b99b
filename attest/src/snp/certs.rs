//! AMD's key hierarchy for SEV-SNP: the pinned roots (ARK per product, with the ASK and ASVK intermediates AMD
//! publishes), the certificate profile of each level, and the `1.3.6.1.4.1.3704.1.*` extensions of VCEK/VLEK
//! certificates.

use std::sync::OnceLock;

use der::asn1::ObjectIdentifier;

use super::report::{Product, Tcb};
use crate::x509::{parse_cert_file, Cert, OID_EC_PUBLIC_KEY, OID_P384};

/// The role a certificate plays in an AMD chain, read from its subject common name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `ARK-<product>`: AMD Root Key (self-signed).
    Ark(Product),
    /// `SEV-<product>`: AMD SEV Key, signs VCEKs.
    Ask(Product),
    /// `SEV-VLEK-<product>`: AMD SEV VLEK key, signs VLEKs.
    Asvk(Product),
    /// `SEV-VCEK`.
    Vcek,
    /// `SEV-VLEK`.
    Vlek,
}

impl Role {
    /// Classifies a certificate by its subject CN.
    pub fn of(cert: &Cert) -> Option<Role> {
        let cn = cert.subject_cn()?;
        let prod = |s: &str| Product::from_product_name(s);
        match cn.as_str() {
            "SEV-VCEK" => Some(Role::Vcek),
            "SEV-VLEK" => Some(Role::Vlek),
            _ => {
                if let Some(p) = cn.strip_prefix("ARK-") {
                    prod(p).map(Role::Ark)
                } else if let Some(p) = cn.strip_prefix("SEV-VLEK-") {
                    prod(p).map(Role::Asvk)
                } else if let Some(p) = cn.strip_prefix("SEV-") {
                    prod(p).map(Role::Ask)
                } else {
                    None
                }
            }
        }
    }
}

/// AMD's published roots and intermediates for one product, compiled into the binary.
pub struct ProductRoots {
    /// ARK (self-signed root, pinned).
    pub ark: Cert,
    /// ASK (signs VCEKs).
    pub ask: Cert,
    /// ASVK (signs VLEKs).
    pub asvk: Cert,
}

fn load(product: Product) -> ProductRoots {
    let (ark, ask, asvk_ark): (&[u8], &[u8], &[u8]) = match product {
        Product::Milan => (
            include_bytes!("../../roots/milan.ark.pem"),
            include_bytes!("../../roots/milan.ask.pem"),
            include_bytes!("../../roots/milan.asvk-ark.pem"),
        ),
        Product::Genoa => (
            include_bytes!("../../roots/genoa.ark.pem"),
            include_bytes!("../../roots/genoa.ask.pem"),
            include_bytes!("../../roots/genoa.asvk-ark.pem"),
        ),
        Product::Turin => (
            include_bytes!("../../roots/turin.ark.pem"),
            include_bytes!("../../roots/turin.ask.pem"),
            include_bytes!("../../roots/turin.asvk-ark.pem"),
        ),
    };
    let one = |b: &[u8]| parse_cert_file(b, "built-in AMD root").expect("built-in AMD roots parse").remove(0);
    ProductRoots { ark: one(ark), ask: one(ask), asvk: one(asvk_ark) }
}

/// The pinned roots of `product`.
pub fn roots(product: Product) -> &'static ProductRoots {
    static MILAN: OnceLock<ProductRoots> = OnceLock::new();
    static GENOA: OnceLock<ProductRoots> = OnceLock::new();
    static TURIN: OnceLock<ProductRoots> = OnceLock::new();
    let cell = match product {
        Product::Milan => &MILAN,
        Product::Genoa => &GENOA,
        Product::Turin => &TURIN,
    };
    cell.get_or_init(|| load(product))
}

const fn amd_oid(s: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(s)
}
const OID_STRUCT_VERSION: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.1");
const OID_PRODUCT_NAME: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.2");
const OID_BL_SPL: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.1");
const OID_TEE_SPL: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.2");
const OID_SNP_SPL: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.3");
const OID_SPL4: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.4");
const OID_SPL5: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.5");
const OID_SPL6: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.6");
const OID_SPL7: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.7");
const OID_UCODE_SPL: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.8");
const OID_FMC_SPL: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.3.9");
const OID_HWID: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.4");
const OID_CSP_ID: ObjectIdentifier = amd_oid("1.3.6.1.4.1.3704.1.5");

/// The AMD extensions of a VCEK or VLEK certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafExtensions {
    /// structVersion (0 Milan/Genoa, 1 Turin).
    pub struct_version: u8,
    /// productName ("Milan-B0", "Genoa", "Turin", VLEK: "Milan").
    pub product_name: String,
    /// The TCB this key was derived for.
    pub tcb: Tcb,
    /// The raw TCB_VERSION these SPLs encode in the product's layout.
    pub tcb_raw: u64,
    /// hwID (VCEK only): the chip id, 64 bytes (8 on Turin).
    pub hwid: Option<Vec<u8>>,
    /// cspID (VLEK only): the cloud provider the key was issued to.
    pub csp_id: Option<String>,
}

/// Reads a small non-negative DER INTEGER (an SPL, 0..=255).
fn der_u8(v: &[u8], what: &str) -> Result<u8, String> {
    match v {
        [0x02, 1, x] if *x < 0x80 => Ok(*x),
        [0x02, 2, 0, x] if *x >= 0x80 => Ok(*x),
        _ => Err(format!("{what} is not a DER INTEGER in 0..=255")),
    }
}

fn der_string(v: &[u8], what: &str) -> Result<String, String> {
    match v {
        [tag, len, rest @ ..] if (*tag == 0x16 || *tag == 0x0C || *tag == 0x13) && *len as usize == rest.len() => {
            String::from_utf8(rest.to_vec()).map_err(|_| format!("{what} is not text"))
        }
        _ => Err(format!("{what} is not a short DER string")),
    }
}

/// Parses and checks the AMD extensions of a VCEK/VLEK for `product`.
pub fn leaf_extensions(cert: &Cert, product: Product, vlek: bool) -> Result<LeafExtensions, String> {
    let req = |oid: &ObjectIdentifier, name: &str| -> Result<&[u8], String> {
        cert.extension(oid)?.ok_or_else(|| format!("missing extension {name} ({oid})"))
    };
    let opt_u8 = |oid: &ObjectIdentifier, name: &str| -> Result<u8, String> {
        cert.extension(oid)?.map(|v| der_u8(v, name)).transpose().map(|v| v.unwrap_or(0))
    };
    let struct_version = der_u8(req(&OID_STRUCT_VERSION, "structVersion")?, "structVersion")?;
    let product_name = der_string(req(&OID_PRODUCT_NAME, "productName")?, "productName")?;
    if Product::from_product_name(&product_name) != Some(product) {
        return Err(format!("productName {product_name:?} is not a {} product", product.name()));
    }
    let bl = der_u8(req(&OID_BL_SPL, "blSPL")?, "blSPL")?;
    let tee = der_u8(req(&OID_TEE_SPL, "teeSPL")?, "teeSPL")?;
    let snp = der_u8(req(&OID_SNP_SPL, "snpSPL")?, "snpSPL")?;
    let ucode = der_u8(req(&OID_UCODE_SPL, "ucodeSPL")?, "ucodeSPL")?;
    let (tcb, tcb_raw) = if product == Product::Turin {
        let fmc = der_u8(req(&OID_FMC_SPL, "fmcSPL")?, "fmcSPL")?;
        let raw = u64::from_le_bytes([fmc, bl, tee, snp, 0, 0, 0, ucode]);
        (Tcb { fmc: Some(fmc), bl, tee, snp, ucode }, raw)
    } else {
        let s4 = opt_u8(&OID_SPL4, "spl4")?;
        let s5 = opt_u8(&OID_SPL5, "spl5")?;
        let s6 = opt_u8(&OID_SPL6, "spl6")?;
        let s7 = opt_u8(&OID_SPL7, "spl7")?;
        let raw = u64::from_le_bytes([bl, tee, s4, s5, s6, s7, snp, ucode]);
        (Tcb { fmc: None, bl, tee, snp, ucode }, raw)
    };
    let hwid = cert.extension(&OID_HWID)?.map(|v| {
        // Usually the raw chip id; some KDS versions wrap it in an OCTET STRING.
        match v {
            [0x04, len, rest @ ..] if *len as usize == rest.len() && (rest.len() == 64 || rest.len() == 8) => {
                rest.to_vec()
            }
            _ => v.to_vec(),
        }
    });
    let csp_id = cert.extension(&OID_CSP_ID)?.map(|v| der_string(v, "cspID")).transpose()?;
    match (vlek, &hwid, &csp_id) {
        (false, Some(h), None) => {
            let want = if product == Product::Turin { 8 } else { 64 };
            if h.len() != want {
                return Err(format!("hwID is {} bytes, expected {want} for {}", h.len(), product.name()));
            }
        }
        (false, _, _) => return Err("a VCEK must carry hwID and no cspID".into()),
        (true, None, Some(_)) => {}
        (true, _, _) => return Err("a VLEK must carry cspID and no hwID".into()),
    }
    Ok(LeafExtensions { struct_version, product_name, tcb, tcb_raw, hwid, csp_id })
}

/// The subject/issuer attributes every AMD certificate carries besides its CN.
pub fn check_amd_name(cert: &Cert, which: &str) -> Result<(), String> {
    let name = cert.parsed().tbs_certificate().subject();
    let get = |r: der::Result<Option<x509_cert::ext::pkix::name::DirectoryString>>| r.ok().flatten().map(String::from);
    let org = get(name.organization());
    let ou = get(name.organization_unit());
    let country = name.country().ok().flatten().map(|s| s.to_string());
    if org.as_deref() != Some("Advanced Micro Devices")
        || ou.as_deref() != Some("Engineering")
        || country.as_deref() != Some("US")
    {
        return Err(format!("{which} subject is not an AMD name (O=Advanced Micro Devices, OU=Engineering, C=US)"));
    }
    Ok(())
}

/// The leaf key must be ECDSA P-384.
pub fn check_leaf_key(cert: &Cert) -> Result<(), String> {
    if cert.public_key_algorithm() != (OID_EC_PUBLIC_KEY, Some(OID_P384)) {
        return Err("key is not an EC P-384 key".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(der: &[u8]) -> Cert {
        Cert::from_der(der, "test").unwrap()
    }

    #[test]
    fn turin_vcek_extensions_use_the_turin_layout() {
        // virtee's Turin VCEK: structVersion 1, fmcSPL present, spl_4 absent, 8-byte hwID.
        let c = cert(include_bytes!("../../testdata/sev-snp/virtee-turin.vcek.der"));
        assert_eq!(Role::of(&c), Some(Role::Vcek));
        let ext = leaf_extensions(&c, Product::Turin, false).unwrap();
        assert_eq!(ext.struct_version, 1);
        assert_eq!(ext.product_name, "Turin");
        assert_eq!(ext.hwid.as_deref(), Some(&hex::decode("1e550a8ee5cf9f4d").unwrap()[..]));
        assert_eq!(ext.tcb, Tcb { fmc: Some(0), bl: 0, tee: 0, snp: 0, ucode: 9 });
        assert_eq!(ext.tcb_raw, 9u64 << 56);
        // Its chain: the pinned Turin ASK signed it.
        assert!(c.verify_signed_by_rsa_pss_sha384(&roots(Product::Turin).ask).is_ok());
        // It is not a Milan certificate.
        assert!(leaf_extensions(&c, Product::Milan, false).is_err());
    }

    #[test]
    fn vcek_and_vlek_extensions_are_exclusive() {
        let vcek = cert(include_bytes!("../../testdata/sev-snp/virtee-milan-v2.vcek.der"));
        assert!(leaf_extensions(&vcek, Product::Milan, true).unwrap_err().contains("cspID"));
        let vlek = cert(include_bytes!("../../testdata/sev-snp/trustee-aws-milan-vlek-v3.vlek.der"));
        assert_eq!(Role::of(&vlek), Some(Role::Vlek));
        let ext = leaf_extensions(&vlek, Product::Milan, true).unwrap();
        assert_eq!(ext.csp_id.as_deref(), Some("CN=cc-us-east-2.amazonaws.com"));
        assert!(leaf_extensions(&vlek, Product::Milan, false).is_err());
    }

    #[test]
    fn pinned_roots_are_amds() {
        for p in [Product::Milan, Product::Genoa, Product::Turin] {
            let r = roots(p);
            assert_eq!(Role::of(&r.ark), Some(Role::Ark(p)));
            assert_eq!(Role::of(&r.ask), Some(Role::Ask(p)));
            assert_eq!(Role::of(&r.asvk), Some(Role::Asvk(p)));
            assert!(r.ark.verify_signed_by_rsa_pss_sha384(&r.ark).is_ok());
            assert!(r.ask.verify_signed_by_rsa_pss_sha384(&r.ark).is_ok());
            assert!(r.asvk.verify_signed_by_rsa_pss_sha384(&r.ark).is_ok());
        }
    }
}
