//! Synthetic firmware images for the measurement tests: the OVMF footer table both SNP and TDX metadata are found
//! through.

#![allow(dead_code)]

/// A GUID as the firmware stores it (mixed-endian).
pub fn guid_le(s: &str) -> Vec<u8> {
    let h = hex::decode(s.replace('-', "")).unwrap();
    [vec![h[3], h[2], h[1], h[0], h[5], h[4], h[7], h[6]], h[8..].to_vec()].concat()
}

/// Writes the footer table (each entry: data, u16 size, GUID; then the footer entry) so that it ends 32 bytes
/// before the end of `img`.
pub fn write_footer_table(img: &mut [u8], entries: &[(Vec<u8>, &str)]) {
    let entry =
        |data: &[u8], g: &str| [data.to_vec(), ((data.len() + 18) as u16).to_le_bytes().to_vec(), guid_le(g)].concat();
    let table: Vec<u8> = entries.iter().flat_map(|(d, g)| entry(d, g)).collect();
    let footer =
        [((table.len() + 18) as u16).to_le_bytes().to_vec(), guid_le("96b582de-1fb2-45f7-baea-a366c55a082d")].concat();
    let all = [table, footer].concat();
    let end = img.len() - 32;
    img[end - all.len()..end].copy_from_slice(&all);
}
