//! Decoding bytes nobody vouches for: a serde `Deserializer` wrapped so
//! that no input, however made, can take the process down.
//!
//! Bytes reach [`decode`](super::decode) from callers of the registry (a
//! command line, a remote worker, a user's service), from the cache and from
//! stored runs: any of them may be damaged or hostile. Two things in a plain
//! bincode decode are not bounded by the input:
//!
//! - **Allocation.** bincode reads a `String` or byte buffer by allocating
//!   the length its prefix claims, then filling it: nine bytes can ask for a
//!   terabyte (an abort) or `u64::MAX` (a panic). Here strings and byte
//!   buffers are read *borrowed* from the input first (the length is checked
//!   against the bytes that are really there) and copied after; sequence and
//!   map length hints are capped at the input's length, so a type that
//!   preallocates from its hint reserves no more than the input could fill.
//! - **Depth.** A recursive type (`enum Tree { Leaf(i64), Node(Vec<Tree>) }`)
//!   recurses once per level: a few kilobytes of input overflow the stack.
//!   Nesting deeper than [`MAX_DEPTH`] is an error (serde_json's limit).
//! - **Elements that take no bytes.** A sequence of `()` (or of a unit
//!   struct, an empty tuple) costs its length prefix and nothing per
//!   element: nine bytes can claim 2^64 - 1 of them, which take forever to
//!   count and then ask for a 137 GB JSON array. A decode makes at most one
//!   element per byte of its input (every element of any other type takes
//!   a byte or more, so no real value is near it) plus
//!   [`MAX_EMPTY_ELEMENTS`].

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

/// How deeply values may nest (options, sequences, maps, structs, enums).
pub const MAX_DEPTH: usize = 128;

/// How many elements that take no bytes (`()`, a unit struct) one decode
/// may make beyond one per byte of its input.
pub const MAX_EMPTY_ELEMENTS: usize = 1 << 20;

thread_local! {
    /// Elements (of sequences, and entries of maps) the decode under way
    /// on this thread may still make. A decode is synchronous, so a
    /// thread's budget is its decode's.
    static ELEMENTS_LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Counts one element against the decode's budget, or refuses it.
fn take_element<E: de::Error>() -> Result<(), E> {
    ELEMENTS_LEFT.with(|left| match left.get().checked_sub(1) {
        Some(n) => {
            left.set(n);
            Ok(())
        }
        None => Err(E::custom(format_args!(
            "the value claims more elements than its bytes can hold (one per byte, and \
             at most {MAX_EMPTY_ELEMENTS} of a type that takes no bytes, like `()`): \
             the input is damaged or hostile"
        ))),
    })
}

/// Gives a decode its budget, and the enclosing decode's back when it ends
/// (also by a panic).
struct Budget(usize);

impl Budget {
    fn start(input_len: usize) -> Budget {
        Budget(ELEMENTS_LEFT.replace(input_len.saturating_add(MAX_EMPTY_ELEMENTS)))
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        ELEMENTS_LEFT.set(self.0);
    }
}

/// What a guarded decode may still do.
#[derive(Clone, Copy)]
struct Bounds {
    /// Nesting levels left.
    depth: usize,
    /// The input's length: no sequence can hold more non-empty elements.
    input_len: usize,
}

impl Bounds {
    /// One level down, or the depth error.
    fn nest<E: de::Error>(self) -> Result<Bounds, E> {
        match self.depth.checked_sub(1) {
            Some(depth) => Ok(Bounds { depth, ..self }),
            None => Err(E::custom(format_args!(
                "the value nests deeper than {MAX_DEPTH} levels"
            ))),
        }
    }

    fn hint(self, hint: Option<usize>) -> Option<usize> {
        hint.map(|n| n.min(self.input_len))
    }
}

/// Decodes a `T` through the guard; the seed for bincode's
/// `seed_decode_from_slice`.
pub(super) struct Guarded<T> {
    input_len: usize,
    value: PhantomData<fn() -> T>,
}

impl<T> Guarded<T> {
    pub(super) fn new(input_len: usize) -> Self {
        Guarded {
            input_len,
            value: PhantomData,
        }
    }
}

impl<'de, T: de::Deserialize<'de>> DeserializeSeed<'de> for Guarded<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<T, D::Error> {
        let _budget = Budget::start(self.input_len);
        T::deserialize(Guard {
            inner,
            bounds: Bounds {
                depth: MAX_DEPTH,
                input_len: self.input_len,
            },
        })
    }
}

/// The wrapped deserializer.
struct Guard<D> {
    inner: D,
    bounds: Bounds,
}

/// A visitor (or seed) one level down, whose accessors stay guarded.
struct Nested<V> {
    inner: V,
    bounds: Bounds,
}

macro_rules! forward_flat {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<D> {
    type Error = D::Error;

    forward_flat! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_bytes deserialize_unit deserialize_identifier
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_any(Nested {
            inner: visitor,
            bounds,
        })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_ignored_any(Nested {
            inner: visitor,
            bounds,
        })
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        // Read in place, then copy: the bytes exist before anything is allocated.
        self.inner.deserialize_str(CopyOut(visitor))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_bytes(CopyOut(visitor))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_option(Nested {
            inner: visitor,
            bounds,
        })
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_newtype_struct(
            name,
            Nested {
                inner: visitor,
                bounds,
            },
        )
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_seq(Nested {
            inner: visitor,
            bounds,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_tuple(
            len,
            Nested {
                inner: visitor,
                bounds,
            },
        )
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_tuple_struct(
            name,
            len,
            Nested {
                inner: visitor,
                bounds,
            },
        )
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_map(Nested {
            inner: visitor,
            bounds,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_struct(
            name,
            fields,
            Nested {
                inner: visitor,
                bounds,
            },
        )
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let bounds = self.bounds.nest()?;
        self.inner.deserialize_enum(
            name,
            variants,
            Nested {
                inner: visitor,
                bounds,
            },
        )
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Hands a borrowed string or byte slice to a visitor as an owned one, so
/// that visitors written only for `visit_string`/`visit_byte_buf` still work.
struct CopyOut<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for CopyOut<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.0.visit_string(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.0.visit_string(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<V::Value, E> {
        self.0.visit_byte_buf(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<V::Value, E> {
        self.0.visit_byte_buf(v)
    }
}

impl<V> Nested<V> {
    fn wrap<T>(&self, inner: T) -> Nested<T> {
        Nested {
            inner,
            bounds: self.bounds,
        }
    }

    fn guard<D>(&self, inner: D) -> Guard<D> {
        Guard {
            inner,
            bounds: self.bounds,
        }
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Nested<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = self.guard(d);
        self.inner.visit_some(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        let d = self.guard(d);
        self.inner.visit_newtype_struct(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let seq = self.wrap(seq);
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let map = self.wrap(map);
        self.inner.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let data = self.wrap(data);
        self.inner.visit_enum(data)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nested<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        let d = self.guard(d);
        self.inner.deserialize(d)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        take_element::<A::Error>()?;
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.bounds.hint(self.inner.size_hint())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        take_element::<A::Error>()?;
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.bounds.hint(self.inner.size_hint())
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Nested<A> {
    type Error = A::Error;
    type Variant = Nested<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let bounds = self.bounds;
        let seed = self.wrap(seed);
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            Nested {
                inner: variant,
                bounds,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Nested<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}
