//! One cursor for every binary parser in the crate (rustls's `msgs::codec::Reader` is the model): reads advance
//! only when they succeed, a sub-reader cannot read past the bytes it was given, and [`Reader::expect_empty`]
//! refuses what is left over, so a parser that reads its structure and then calls it cannot accept trailing bytes.
//! Integers are little-endian, as in most structures this crate parses (SNP reports, TDX quotes, Azure HCL
//! reports, OVMF and TDVF tables, PE headers, TCG event logs); the TPM's own structures (quotes, public areas,
//! signatures) are big-endian and read with the `be_` methods and [`Reader::tpm2b`].
//!
//! Fixed layouts (an SNP report, a PE header) read a field where the format puts it: [`le_u16`], [`le_u32`] and
//! [`le_u64`] are a reader positioned at that offset.

use crate::error::ParseError;

/// A cursor over untrusted bytes. `what` names the structure in the errors it returns.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    offs: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { buf, offs: 0, what }
    }

    /// A reader at `offset` into `buf` (past the end, a reader of nothing: every read fails).
    pub(crate) fn at(buf: &'a [u8], offset: usize, what: &'static str) -> Reader<'a> {
        match buf.get(offset..) {
            Some(_) => Reader { buf, offs: offset, what },
            None => Reader { buf: &[], offs: 0, what },
        }
    }

    /// Names the structure that the reads from here on belong to (in their errors).
    pub(crate) fn section(&mut self, what: &'static str) -> &mut Reader<'a> {
        self.what = what;
        self
    }

    /// The next `n` bytes; the cursor moves only if they are all there.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.offs.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(ParseError::Truncated {
            what: self.what,
            need: self.offs.saturating_add(n),
            have: self.buf.len(),
        })?;
        let s = &self.buf[self.offs..end];
        self.offs = end;
        Ok(s)
    }

    /// The next `n` bytes as a reader of their own.
    pub(crate) fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, ParseError> {
        self.take(n).map(|b| Reader::new(b, what))
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    /// A little-endian `u16`.
    pub(crate) fn u16(&mut self) -> Result<u16, ParseError> {
        self.array().map(u16::from_le_bytes)
    }

    /// A little-endian `u32`.
    pub(crate) fn u32(&mut self) -> Result<u32, ParseError> {
        self.array().map(u32::from_le_bytes)
    }

    /// A little-endian `u64`.
    pub(crate) fn u64(&mut self) -> Result<u64, ParseError> {
        self.array().map(u64::from_le_bytes)
    }

    /// A big-endian `u16` (TPM structures).
    pub(crate) fn be_u16(&mut self) -> Result<u16, ParseError> {
        self.array().map(u16::from_be_bytes)
    }

    /// A big-endian `u32` (TPM structures).
    pub(crate) fn be_u32(&mut self) -> Result<u32, ParseError> {
        self.array().map(u32::from_be_bytes)
    }

    /// A big-endian `u64` (TPM structures).
    pub(crate) fn be_u64(&mut self) -> Result<u64, ParseError> {
        self.array().map(u64::from_be_bytes)
    }

    /// A TPM2B: a big-endian `u16` size and that many bytes (nothing is read unless both are there).
    pub(crate) fn tpm2b(&mut self) -> Result<&'a [u8], ParseError> {
        let start = self.offs;
        let n = self.be_u16()?;
        self.take(usize::from(n)).inspect_err(|_| self.offs = start)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.offs..];
        self.offs = self.buf.len();
        s
    }

    /// Bytes read so far.
    pub(crate) fn used(&self) -> usize {
        self.offs
    }

    /// Refuses what is left.
    pub(crate) fn expect_empty(&self) -> Result<(), ParseError> {
        match self.buf.len() - self.offs {
            0 => Ok(()),
            count => Err(ParseError::TrailingBytes { what: self.what, count }),
        }
    }
}

/// The little-endian `u16` at `at`, if `b` holds it.
pub(crate) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Reader::at(b, at, "").u16().ok()
}

/// The little-endian `u32` at `at`, if `b` holds it.
pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Reader::at(b, at, "").u32().ok()
}

/// The little-endian `u64` at `at`, if `b` holds it.
pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Reader::at(b, at, "").u64().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_read_leaves_the_cursor_where_it_was() {
        let mut r = Reader::new(&[1, 0, 2], "t");
        assert_eq!(r.u16(), Ok(1));
        assert_eq!(r.u32(), Err(ParseError::Truncated { what: "t", need: 6, have: 3 }));
        assert_eq!(r.used(), 2, "the failed read consumed nothing");
        assert_eq!(r.take(1), Ok(&[2u8][..]));
        assert_eq!(r.expect_empty(), Ok(()));
    }

    #[test]
    fn a_sub_reader_cannot_read_past_its_bytes_and_leftovers_are_refused() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5], "outer");
        let mut s = r.sub(3, "inner").unwrap();
        assert_eq!(s.take(2), Ok(&[1u8, 2][..]));
        assert!(s.u16().is_err(), "the inner reader ends at 3 bytes even though the outer has 5");
        assert_eq!(s.expect_empty(), Err(ParseError::TrailingBytes { what: "inner", count: 1 }));
        assert_eq!(r.rest(), &[4, 5]);
        assert!(r.sub(1, "x").is_err());
    }

    #[test]
    fn tpm_fields_are_big_endian_and_a_short_tpm2b_reads_nothing() {
        let mut r = Reader::new(&[0x12, 0x34, 0, 2, 0xaa, 0xbb, 0, 9, 1], "t");
        assert_eq!(r.be_u16(), Ok(0x1234));
        assert_eq!(r.tpm2b(), Ok(&[0xaa, 0xbb][..]));
        assert!(r.tpm2b().is_err(), "9 bytes announced, 1 there");
        assert_eq!(r.used(), 6, "the size of a TPM2B that is not all there is not consumed");
        assert_eq!(Reader::new(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2], "t").be_u32(), Ok(1));
        assert_eq!(Reader::new(&[0, 0, 0, 0, 0, 0, 1, 2], "t").be_u64(), Ok(0x102));
    }

    #[test]
    fn fixed_offsets_never_panic_and_read_little_endian() {
        let b = [0x78, 0x56, 0x34, 0x12, 0xff];
        assert_eq!(le_u32(&b, 0), Some(0x1234_5678));
        assert_eq!(le_u16(&b, 3), Some(0xff12));
        assert_eq!(le_u32(&b, 2), None);
        assert_eq!(le_u64(&b, usize::MAX), None);
        assert_eq!(le_u16(&b, 5), None);
        assert_eq!(Reader::at(&b, 9, "t").take(0).map(<[u8]>::len), Ok(0));
    }
}
