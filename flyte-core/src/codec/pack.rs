//! [`Packer`]: appends values in the codec's encoding, field by field, for
//! hot paths that pack many small records into one buffer (the run store
//! packs one per ended action). The bytes are exactly what [`encode`] makes
//! of the same fields, so such records are read back with [`decode`] or a
//! [`Reader`] into a serde type whose fields come in the same order.
//!
//! [`encode`]: super::encode
//! [`decode`]: super::decode
//! [`Reader`]: super::Reader

use crate::error::TaskError;
use serde::Serialize;

/// bincode's varint: one byte up to 250, else a marker and the value in
/// 2, 4, 8 or 16 little-endian bytes.
const SINGLE_BYTE_MAX: u64 = 250;
const U16_BYTE: u8 = 251;
const U32_BYTE: u8 = 252;
const U64_BYTE: u8 = 253;
const U128_BYTE: u8 = 254;

/// Appends encoded values to a `Vec<u8>`.
///
/// # Examples
///
/// ```
/// use flyte_core::codec::{self, Packer};
///
/// let mut buf = Vec::new();
/// Packer::new(&mut buf).u64(300).str("hi").option(Some(7_i64), |p, v| {
///     p.i64(v);
/// });
/// let back: (u64, String, Option<i64>) = codec::decode(&buf)?;
/// assert_eq!(back, (300, "hi".to_owned(), Some(7)));
/// # Ok::<(), flyte_core::TaskError>(())
/// ```
#[derive(Debug)]
pub struct Packer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Packer<'a> {
    /// A packer appending to `buf`.
    #[inline]
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Packer { buf }
    }

    /// A `u8` (one byte, as the codec writes it).
    #[inline(always)]
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A `bool`.
    #[inline]
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// A `u16`, `u32` or `u64`, as a varint.
    #[inline(always)]
    pub fn u64(&mut self, v: u64) -> &mut Self {
        if v <= SINGLE_BYTE_MAX {
            self.buf.push(v as u8);
        } else if let Ok(v) = u16::try_from(v) {
            self.buf.push(U16_BYTE);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            self.buf.push(U32_BYTE);
            self.buf.extend_from_slice(&v.to_le_bytes());
        } else {
            self.buf.push(U64_BYTE);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    /// An `i16`, `i32` or `i64`, zigzagged into a varint.
    #[inline(always)]
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(if v < 0 {
            !(v as u64) * 2 + 1
        } else {
            (v as u64) * 2
        })
    }

    /// A `u128`, as a varint.
    #[inline]
    pub fn u128(&mut self, v: u128) -> &mut Self {
        match u64::try_from(v) {
            Ok(v) => self.u64(v),
            Err(_) => {
                self.buf.push(U128_BYTE);
                self.buf.extend_from_slice(&v.to_le_bytes());
                self
            }
        }
    }

    /// A byte string: its length, then the bytes (`&[u8]`, `Vec<u8>` and
    /// `serde_bytes` alike).
    #[inline]
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// A string.
    #[inline]
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// An `Option`: its tag, then (when `Some`) what `some` packs.
    #[inline]
    pub fn option<T>(&mut self, v: Option<T>, some: impl FnOnce(&mut Self, T)) -> &mut Self {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                some(self, v);
                self
            }
        }
    }

    /// Any serializable value, through the codec.
    ///
    /// # Errors
    ///
    /// As [`encode`](super::encode); the buffer may then hold part of it.
    #[inline]
    pub fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<&mut Self, TaskError> {
        super::encode_into(v, self.buf)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;

    #[test]
    fn packs_what_the_codec_encodes() {
        let unsigned = [
            0,
            1,
            250,
            251,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ];
        for v in unsigned {
            let mut buf = Vec::new();
            Packer::new(&mut buf).u64(v);
            assert_eq!(buf, encode(&v).unwrap(), "u64 {v}");
            buf.clear();
            Packer::new(&mut buf).u128(u128::from(v));
            assert_eq!(buf, encode(&u128::from(v)).unwrap(), "u128 {v}");
        }
        for v in [
            0_i64,
            1,
            -1,
            125,
            -126,
            126,
            40_000,
            -40_000,
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = Vec::new();
            Packer::new(&mut buf).i64(v);
            assert_eq!(buf, encode(&v).unwrap(), "i64 {v}");
        }
        let big = u128::MAX / 3;
        let mut buf = Vec::new();
        Packer::new(&mut buf)
            .u128(big)
            .u8(7)
            .bool(true)
            .str("héllo")
            .bytes(&[1, 2, 3])
            .option(Some(5_u64), |p, v| {
                p.u64(v);
            })
            .option(None::<u64>, |p, v| {
                p.u64(v);
            })
            .value(&("x", 2_i32))
            .unwrap();
        let expected = encode(&(
            big,
            7_u8,
            true,
            "héllo",
            vec![1_u8, 2, 3],
            Some(5_u64),
            None::<u64>,
            ("x", 2_i32),
        ))
        .unwrap();
        assert_eq!(buf, expected);
    }
}
