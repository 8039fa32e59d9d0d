//! The codec: every byte encoding of task values goes through here.
//!
//! Values are encoded with bincode 2 (serde mode, standard configuration).
//! Local calls never encode; bytes are made only where something needs them:
//! the registry and retries. Hashes of inputs (action ids, and cache keys)
//! use the [canonical](encode_canonical) encoding, which is the same in
//! every process even for `HashMap`s.
//!
//! Decoding is safe on any bytes, damaged or hostile: lengths are checked
//! against the input before anything is allocated, and values may nest at
//! most [`MAX_DEPTH`] levels. Bad bytes are an [`ErrorKind::Input`] error,
//! never a panic, an abort or a stack overflow.

mod canonical;
mod guard;
mod pack;

pub use canonical::{encode_canonical, CanonicalError};
pub use guard::{MAX_DEPTH, MAX_EMPTY_ELEMENTS};
pub use pack::Packer;

use crate::error::{ErrorKind, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` to bytes.
///
/// # Errors
///
/// [`ErrorKind::Input`] when the value's `Serialize` impl uses something
/// bincode cannot encode (e.g. a sequence of unknown length).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, TaskError> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| TaskError::new(ErrorKind::Input, format!("cannot encode value: {e}")))
}

/// Appends the encoding of `value` to `buf` (the same bytes as [`encode`]),
/// for callers that pack many values into one buffer.
///
/// # Errors
///
/// As [`encode`]; `buf` may then hold part of the value.
#[inline]
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), TaskError> {
    bincode::serde::encode_into_writer(value, VecWriter(buf), config())
        .map_err(|e| TaskError::new(ErrorKind::Input, format!("cannot encode value: {e}")))
}

/// bincode's output into a growing `Vec`.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes a whole `T` from `bytes`; trailing bytes are an error.
///
/// # Errors
///
/// [`ErrorKind::Input`] when the bytes are not a `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, TaskError> {
    let mut reader = Reader::new(bytes);
    let value = reader.read::<T>()?;
    reader.finish()?;
    Ok(value)
}

/// The error for bytes that are not a `T`; for a type the codec cannot
/// read at all, what to use instead.
fn decode_error<T>(e: &bincode::error::DecodeError) -> TaskError {
    use bincode::error::DecodeError;
    use bincode::serde::DecodeError as Serde;
    let type_name = std::any::type_name::<T>();
    let message = match e {
        DecodeError::Serde(Serde::AnyNotSupported | Serde::IgnoredAnyNotSupported) => format!(
            "cannot decode {type_name}: it needs a self-describing format (serde's \
             deserialize_any: serde_json::Value, #[serde(untagged)] or #[serde(flatten)]), \
             which the codec (bincode) cannot read, so it can be neither cached nor \
             replayed on resume: use a concrete type, or pass the JSON as a String"
        ),
        e => format!("cannot decode {type_name}: {e}"),
    };
    TaskError::new(ErrorKind::Input, message)
}

/// Reads values one after another from a byte slice (a task's parameters
/// are encoded in order, as a tuple).
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Decodes the next value.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] when the next bytes are not a `T`, run out, or
    /// nest deeper than [`MAX_DEPTH`].
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<T, TaskError> {
        let seed = guard::Guarded::<T>::new(self.rest.len());
        let (value, used) = bincode::serde::seed_decode_from_slice(seed, self.rest, config())
            .map_err(|e| decode_error::<T>(&e))?;
        self.rest = &self.rest[used..];
        Ok(value)
    }

    /// The next byte, unread: a format's tag or flags, to choose what to
    /// read next.
    pub fn peek_byte(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Checks that every byte was read.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] naming how many bytes were left over.
    pub fn finish(self) -> Result<(), TaskError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(TaskError::new(
                ErrorKind::Input,
                format!("{} unexpected trailing bytes", self.rest.len()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reader_in_order() {
        let bytes = encode(&(3_i64, "x".to_owned())).unwrap();
        let (a, b): (i64, String) = decode(&bytes).unwrap();
        assert_eq!((a, b.as_str()), (3, "x"));
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.read::<i64>().unwrap(), 3);
        assert_eq!(reader.read::<String>().unwrap(), "x");
        reader.finish().unwrap();
    }

    #[test]
    fn encode_into_appends_the_same_bytes() {
        let mut buf = vec![9];
        encode_into(&(3_i64, "x"), &mut buf).unwrap();
        assert_eq!(buf[1..], encode(&(3_i64, "x")).unwrap()[..]);
    }

    #[test]
    fn trailing_and_short_input_are_errors() {
        let bytes = encode(&(1_u8, 2_u8)).unwrap();
        let err = decode::<u8>(&bytes).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input);
        assert!(err.message().contains("trailing"), "{err}");
        let err = decode::<String>(&[5]).unwrap_err();
        assert!(err.message().contains("String"), "{err}");
    }

    /// The prefix of a `String` (or any byte string) of length `len`, with
    /// no bytes after it: bincode's varint for a u64 is `0xFD` then 8 bytes.
    fn claimed_len(len: u64) -> Vec<u8> {
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes
    }

    #[test]
    fn a_huge_claimed_length_is_an_error_not_an_abort() {
        for len in [1_u64 << 40, u64::MAX, 1 << 20] {
            let err = decode::<String>(&claimed_len(len)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input, "{err}");
            let err = decode::<Vec<u8>>(&claimed_len(len)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input, "{err}");
            let err = decode::<serde_bytes_like::Buf>(&claimed_len(len)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input, "{err}");
            let err = decode::<Vec<u64>>(&claimed_len(len)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input, "{err}");
            let err =
                decode::<std::collections::HashMap<u64, String>>(&claimed_len(len)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input, "{err}");
        }
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Tree {
        Leaf(i64),
        Node(Vec<Tree>),
    }

    fn nested(depth: usize) -> Tree {
        (0..depth).fold(Tree::Leaf(7), |t, _| Tree::Node(vec![t]))
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // Node(vec![..]) is an enum tag and a length: two bytes a level.
        let mut hostile = Vec::new();
        for _ in 0..30_000 {
            hostile.extend_from_slice(&[1, 1]);
        }
        hostile.extend_from_slice(&[0, 14]);
        let err = decode::<Tree>(&hostile).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input);
        assert!(err.message().contains("deeper than"), "{err}");
        // Values within the limit round-trip.
        let ok = nested(40);
        assert_eq!(decode::<Tree>(&encode(&ok).unwrap()).unwrap(), ok);
    }

    #[test]
    fn elements_that_take_no_bytes_are_bounded_by_a_budget_not_by_their_size() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Unit;
        // A length prefix and nothing else: 2^64 - 1 and 2^32 - 1 elements.
        let mut nine = vec![253];
        nine.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut five = vec![252];
        five.extend_from_slice(&u32::MAX.to_le_bytes());
        for hostile in [&nine, &five] {
            let started = std::time::Instant::now();
            let err = decode::<Vec<()>>(hostile).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Input);
            assert!(
                err.message().contains("more elements than its bytes"),
                "{err}"
            );
            assert!(decode::<Vec<Unit>>(hostile).is_err());
            assert!(decode::<std::collections::BTreeMap<(), ()>>(hostile).is_err());
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
        // Nested: a few thousand each, many times over, is the same budget.
        let inner = encode(&vec![(); 4_000]).unwrap();
        let mut outer = encode(&400u64).unwrap();
        for _ in 0..400 {
            outer.extend_from_slice(&inner);
        }
        assert!(decode::<Vec<Vec<()>>>(&outer).is_err());
        // Real values are far from it.
        let units = vec![(); 100_000];
        assert_eq!(decode::<Vec<()>>(&encode(&units).unwrap()).unwrap(), units);
        let bytes: Vec<u8> = (0..2_000_000u32).map(|i| i as u8).collect();
        assert_eq!(decode::<Vec<u8>>(&encode(&bytes).unwrap()).unwrap(), bytes);
        let strings = vec![String::new(); 3_000_000];
        assert_eq!(
            decode::<Vec<String>>(&encode(&strings).unwrap()).unwrap(),
            strings
        );
    }

    #[test]
    fn guarded_decoding_keeps_every_value() {
        use std::collections::{BTreeMap, HashMap};
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Shape {
            name: String,
            tags: Vec<String>,
            bytes: serde_bytes_like::Buf,
            by_key: BTreeMap<String, Option<(u8, char)>>,
            counts: HashMap<u32, i128>,
            unit: (),
            nothing: Option<Box<Shape>>,
            new: NewType,
            kind: Tree,
            float: f64,
        }
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct NewType(u16);
        let value = Shape {
            name: "héllo".into(),
            tags: vec!["a".into(), String::new()],
            bytes: serde_bytes_like::Buf(vec![0, 255, 3]),
            by_key: [("k".to_owned(), Some((9, 'ß'))), ("n".to_owned(), None)].into(),
            counts: [(1, -5), (2, i128::MAX)].into(),
            unit: (),
            nothing: None,
            new: NewType(77),
            kind: nested(3),
            float: 1.5,
        };
        let back: Shape = decode(&encode(&value).unwrap()).unwrap();
        assert_eq!(back, value);
    }

    /// A byte buffer that serializes as serde bytes (as `serde_bytes` does).
    mod serde_bytes_like {
        #[derive(Debug, PartialEq)]
        pub(super) struct Buf(pub(super) Vec<u8>);

        impl serde::Serialize for Buf {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for Buf {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl serde::de::Visitor<'_> for Visit {
                    type Value = Buf;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    // Only the owned form, as some hand-written visitors do.
                    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Buf, E> {
                        Ok(Buf(v))
                    }
                }
                d.deserialize_byte_buf(Visit)
            }
        }
    }
}
