//! The codec: every byte encoding of task values goes through here.
//!
//! Values are encoded with bincode 2 (serde mode, standard configuration).
//! Local calls never encode; bytes are made only where something needs them:
//! the registry and retries. Hashes of inputs (action ids, and cache keys)
//! use the [canonical](encode_canonical) encoding, which is the same in
//! every process even for `HashMap`s.

mod canonical;

pub use canonical::{encode_canonical, CanonicalError};

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
    /// [`ErrorKind::Input`] when the next bytes are not a `T` or run out.
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<T, TaskError> {
        let (value, used) = bincode::serde::decode_from_slice::<T, _>(self.rest, config())
            .map_err(|e| {
                TaskError::new(
                    ErrorKind::Input,
                    format!("cannot decode {}: {e}", std::any::type_name::<T>()),
                )
            })?;
        self.rest = &self.rest[used..];
        Ok(value)
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
    fn trailing_and_short_input_are_errors() {
        let bytes = encode(&(1_u8, 2_u8)).unwrap();
        let err = decode::<u8>(&bytes).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Input);
        assert!(err.message().contains("trailing"), "{err}");
        let err = decode::<String>(&[5]).unwrap_err();
        assert!(err.message().contains("String"), "{err}");
    }
}
