//! A canonical encoding: the same value gives the same bytes in every
//! process, whatever the iteration order of its maps.
//!
//! bincode writes a `HashMap` in its (random) iteration order, so its bytes
//! differ between runs. Here map entries are sorted by their encoded keys,
//! struct fields carry their names (so skipped fields cannot make two
//! values collide), and every item carries a tag and, where needed, a
//! length: different values of one type give different bytes. Used for
//! input hashes (action ids) and cache keys; never decoded.

use serde::ser::{self, Serialize};
use std::fmt;

/// Why a value could not be encoded canonically.
#[derive(Debug)]
pub struct CanonicalError(String);

impl fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CanonicalError {}

impl ser::Error for CanonicalError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CanonicalError(msg.to_string())
    }
}

/// Appends the canonical encoding of `value` to `out`.
///
/// # Errors
///
/// When the value's `Serialize` impl reports an error.
pub fn encode_canonical<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CanonicalError> {
    value.serialize(Canonical { out })
}

mod tag {
    pub(super) const BOOL: u8 = 1;
    pub(super) const I8: u8 = 2;
    pub(super) const I16: u8 = 3;
    pub(super) const I32: u8 = 4;
    pub(super) const I64: u8 = 5;
    pub(super) const I128: u8 = 6;
    pub(super) const U8: u8 = 7;
    pub(super) const U16: u8 = 8;
    pub(super) const U32: u8 = 9;
    pub(super) const U64: u8 = 10;
    pub(super) const U128: u8 = 11;
    pub(super) const F32: u8 = 12;
    pub(super) const F64: u8 = 13;
    pub(super) const CHAR: u8 = 14;
    pub(super) const STR: u8 = 15;
    pub(super) const BYTES: u8 = 16;
    pub(super) const NONE: u8 = 17;
    pub(super) const SOME: u8 = 18;
    pub(super) const UNIT: u8 = 19;
    pub(super) const VARIANT: u8 = 20;
    pub(super) const SEQ: u8 = 21;
    pub(super) const TUPLE: u8 = 22;
    pub(super) const MAP: u8 = 23;
    pub(super) const STRUCT: u8 = 24;
}

struct Canonical<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Canonical<'a> {
    fn put(&mut self, tag: u8, bytes: &[u8]) -> Result<(), CanonicalError> {
        self.out.push(tag);
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn put_len_prefixed(&mut self, tag: u8, bytes: &[u8]) -> Result<(), CanonicalError> {
        self.out.push(tag);
        self.out
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn variant(&mut self, index: u32) {
        self.out.push(tag::VARIANT);
        self.out.extend_from_slice(&index.to_le_bytes());
    }

    /// A variant with fields: its index, then its fields as a `kind` sequence.
    fn variant_fields(mut self, index: u32, kind: u8) -> Seq<'a> {
        self.variant(index);
        Seq::start(self.out, kind)
    }
}

/// Elements written one after another, then prefixed with their count
/// (which serde may not know up front).
struct Seq<'a> {
    out: &'a mut Vec<u8>,
    count_at: usize,
    count: u64,
}

impl<'a> Seq<'a> {
    fn start(out: &'a mut Vec<u8>, tag: u8) -> Self {
        out.push(tag);
        let count_at = out.len();
        out.extend_from_slice(&0_u64.to_le_bytes());
        Seq {
            out,
            count_at,
            count: 0,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        self.count += 1;
        value.serialize(Canonical { out: self.out })
    }

    fn named<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        self.out
            .extend_from_slice(&(name.len() as u64).to_le_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.element(value)
    }

    fn end(self) -> Result<(), CanonicalError> {
        self.out[self.count_at..self.count_at + 8].copy_from_slice(&self.count.to_le_bytes());
        Ok(())
    }
}

/// Entries encoded apart, sorted by their encoded keys at the end.
struct Map<'a> {
    out: &'a mut Vec<u8>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// `serialize_*` for integers: the type's tag, then its little-endian bytes.
macro_rules! integers {
    ($($method:ident: $ty:ty = $tag:ident),*) => {$(
        fn $method(mut self, v: $ty) -> Result<(), CanonicalError> {
            self.put(tag::$tag, &v.to_le_bytes())
        }
    )*};
}

impl<'a> ser::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Seq<'a>;
    type SerializeStructVariant = Seq<'a>;

    fn serialize_bool(mut self, v: bool) -> Result<(), CanonicalError> {
        self.put(tag::BOOL, &[u8::from(v)])
    }
    integers!(
        serialize_i8: i8 = I8,
        serialize_i16: i16 = I16,
        serialize_i32: i32 = I32,
        serialize_i64: i64 = I64,
        serialize_i128: i128 = I128,
        serialize_u8: u8 = U8,
        serialize_u16: u16 = U16,
        serialize_u32: u32 = U32,
        serialize_u64: u64 = U64,
        serialize_u128: u128 = U128
    );
    fn serialize_f32(mut self, v: f32) -> Result<(), CanonicalError> {
        self.put(tag::F32, &v.to_bits().to_le_bytes())
    }
    fn serialize_f64(mut self, v: f64) -> Result<(), CanonicalError> {
        self.put(tag::F64, &v.to_bits().to_le_bytes())
    }
    fn serialize_char(mut self, v: char) -> Result<(), CanonicalError> {
        self.put(tag::CHAR, &u32::from(v).to_le_bytes())
    }
    fn serialize_str(mut self, v: &str) -> Result<(), CanonicalError> {
        self.put_len_prefixed(tag::STR, v.as_bytes())
    }
    fn serialize_bytes(mut self, v: &[u8]) -> Result<(), CanonicalError> {
        self.put_len_prefixed(tag::BYTES, v)
    }
    fn serialize_none(mut self) -> Result<(), CanonicalError> {
        self.put(tag::NONE, &[])
    }
    fn serialize_some<T: Serialize + ?Sized>(mut self, value: &T) -> Result<(), CanonicalError> {
        self.put(tag::SOME, &[])?;
        value.serialize(self)
    }
    fn serialize_unit(mut self) -> Result<(), CanonicalError> {
        self.put(tag::UNIT, &[])
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), CanonicalError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        mut self,
        _: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<(), CanonicalError> {
        self.variant(index);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        self.variant(index);
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, CanonicalError> {
        Ok(Seq::start(self.out, tag::SEQ))
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq<'a>, CanonicalError> {
        Ok(Seq::start(self.out, tag::TUPLE))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'a>, CanonicalError> {
        Ok(Seq::start(self.out, tag::TUPLE))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, CanonicalError> {
        Ok(self.variant_fields(index, tag::TUPLE))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, CanonicalError> {
        Ok(Map {
            out: self.out,
            entries: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Seq<'a>, CanonicalError> {
        Ok(Seq::start(self.out, tag::STRUCT))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, CanonicalError> {
        Ok(self.variant_fields(index, tag::STRUCT))
    }
}

/// The serde traits whose items are positional: each is an element.
macro_rules! positional {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = CanonicalError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
                self.element(value)
            }
            fn end(self) -> Result<(), CanonicalError> {
                Seq::end(self)
            }
        }
    )*};
}

/// The serde traits whose fields are named: each is written with its name.
macro_rules! named {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = CanonicalError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), CanonicalError> {
                self.named(key, value)
            }
            fn end(self) -> Result<(), CanonicalError> {
                Seq::end(self)
            }
        }
    )*};
}

positional!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);
named!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CanonicalError> {
        let mut bytes = Vec::new();
        encode_canonical(key, &mut bytes)?;
        self.entries.push((bytes, Vec::new()));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        let entry = self
            .entries
            .last_mut()
            .ok_or_else(|| CanonicalError("a map value came before its key".to_owned()))?;
        encode_canonical(value, &mut entry.1)
    }
    fn end(mut self) -> Result<(), CanonicalError> {
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.out.push(tag::MAP);
        self.out
            .extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (key, value) in &self.entries {
            // Each side is self-delimiting (tags and lengths inside).
            self.out.extend_from_slice(key);
            self.out.extend_from_slice(value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::{BTreeMap, HashMap};

    fn bytes<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode_canonical(v, &mut out).unwrap();
        out
    }

    #[test]
    fn maps_encode_the_same_whatever_their_order() {
        let pairs: Vec<(String, u32)> = (0..200).map(|i| (format!("k{i}"), i)).collect();
        let forward: HashMap<_, _> = pairs.iter().cloned().collect();
        let mut backward = HashMap::with_capacity(1);
        for (k, v) in pairs.iter().rev() {
            backward.insert(k.clone(), *v);
        }
        let sorted: BTreeMap<_, _> = pairs.iter().cloned().collect();
        assert_eq!(bytes(&forward), bytes(&backward));
        assert_eq!(bytes(&forward), bytes(&sorted));
        let nested: Vec<HashMap<String, u32>> = vec![forward.clone(), backward.clone()];
        assert_eq!(bytes(&nested[0]), bytes(&nested[1]));
    }

    #[test]
    fn different_values_give_different_bytes() {
        #[derive(Serialize)]
        struct Sparse {
            #[serde(skip_serializing_if = "Option::is_none")]
            a: Option<u8>,
            #[serde(skip_serializing_if = "Option::is_none")]
            b: Option<u8>,
        }
        let first = Sparse {
            a: Some(1),
            b: None,
        };
        let second = Sparse {
            a: None,
            b: Some(1),
        };
        assert_ne!(bytes(&first), bytes(&second));
        assert_ne!(bytes(&("ab", "c")), bytes(&("a", "bc")));
        assert_ne!(
            bytes(&vec![vec![1_u8], vec![]]),
            bytes(&vec![vec![], vec![1_u8]])
        );
        assert_ne!(bytes(&Some(0_u8)), bytes(&0_u8));
        assert_ne!(bytes(&1.0_f64), bytes(&1_u64));
        assert_eq!(bytes(&(1_u8, "x")), bytes(&(1_u8, "x".to_owned())));
    }
}
