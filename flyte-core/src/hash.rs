//! Deterministic ids: input hashes and action ids.

use crate::codec::encode_canonical;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

/// A 128-bit hash of a task's encoded inputs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct InputHash(pub u128);

impl InputHash {
    /// Hashes the [canonical](crate::codec::encode_canonical) encoding of
    /// `inputs`: the same inputs give the same hash in every process, maps
    /// included. The encoding goes into a buffer reused per thread.
    ///
    /// A value whose `Serialize` impl fails is hashed by its type name and
    /// the error instead, so that hashing never fails; such inputs still
    /// run, their calls only share ids more often.
    pub fn of<T: Serialize + ?Sized>(inputs: &T) -> Self {
        thread_local! {
            static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        BUFFER.with(|buffer| {
            // A re-entrant call (a Serialize impl hashing inputs itself)
            // gets a buffer of its own.
            let mut own = Vec::new();
            let mut shared = buffer.try_borrow_mut();
            let bytes = match &mut shared {
                Ok(shared) => shared,
                Err(_) => &mut own,
            };
            bytes.clear();
            if let Err(e) = encode_canonical(inputs, bytes) {
                bytes.clear();
                bytes.extend_from_slice(b"\0unencodable\0");
                bytes.extend_from_slice(std::any::type_name::<T>().as_bytes());
                bytes.extend_from_slice(e.to_string().as_bytes());
            }
            InputHash(xxh3_128(bytes))
        })
    }
}

/// The deterministic id of an action: the same call at the same place of the
/// same run tree gets the same id in every run.
///
/// Built from the parent's id, the task name, the input hash and a sequence
/// number (see [`ActionId::child`]). Displayed as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActionId(pub u128);

impl ActionId {
    /// The id of a root action: its task and inputs.
    pub fn root(task: &str, inputs: InputHash) -> Self {
        Self::derive(0, task, inputs, 0)
    }

    /// The id of a child of `parent`: its task, inputs and `seq`, the number
    /// of earlier calls with the same task and inputs under that parent (or,
    /// for a fan-out item, its input index).
    pub fn child(parent: ActionId, task: &str, inputs: InputHash, seq: u64) -> Self {
        Self::derive(parent.0, task, inputs, seq)
    }

    /// The id of the `seq`-th fan-out (`map` or `gather`) under `parent`.
    pub fn fan_out(parent: ActionId, seq: u64) -> Self {
        Self::derive(parent.0, "\0fan-out", InputHash(0), seq)
    }

    fn derive(parent: u128, task: &str, inputs: InputHash, seq: u64) -> Self {
        // Fixed-size parts in one stack buffer, hashed in one shot; the task
        // name enters through its own 64-bit hash.
        let mut bytes = [0_u8; 48];
        bytes[..16].copy_from_slice(&parent.to_le_bytes());
        bytes[16..24].copy_from_slice(&xxh3_64(task.as_bytes()).to_le_bytes());
        bytes[24..40].copy_from_slice(&inputs.0.to_le_bytes());
        bytes[40..].copy_from_slice(&seq.to_le_bytes());
        ActionId(xxh3_128(&bytes))
    }
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActionId({self})")
    }
}

/// A hasher for maps keyed by [`ActionId`]s: an id is already a hash of
/// its task, inputs and place, so its bits are used as they are (folded to
/// 64), several times cheaper than the standard SipHash on the maps of a
/// million actions that tools keep (the report's digest, the UI's sites).
/// Ids are not chosen by an adversary who could collide them on purpose
/// without also choosing the tasks.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only ids come here through `write_u128`; anything else still
        // hashes, if slowly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }
}

/// A set of action ids, with [`IdHasher`].
pub type IdSet = std::collections::HashSet<ActionId, std::hash::BuildHasherDefault<IdHasher>>;

/// A map keyed by action ids, with [`IdHasher`].
pub type IdMap<V> = std::collections::HashMap<ActionId, V, std::hash::BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_inputs_hash_the_same_whatever_their_order() {
        use std::collections::HashMap;
        let a: HashMap<String, u32> = (0..100).map(|i| (i.to_string(), i)).collect();
        let mut b: HashMap<String, u32> = HashMap::new();
        for i in (0..100).rev() {
            b.insert(i.to_string(), i);
        }
        assert_eq!(InputHash::of(&(a,)), InputHash::of(&(b,)));
    }

    #[test]
    fn ids_are_deterministic_and_distinguish_every_part() {
        let h1 = InputHash::of(&(1_i64,));
        let h2 = InputHash::of(&(2_i64,));
        assert_eq!(h1, InputHash::of(&(1_i64,)));
        assert_ne!(h1, h2);
        let root = ActionId::root("e.main", h1);
        let a = ActionId::child(root, "e.f", h1, 0);
        assert_eq!(a, ActionId::child(root, "e.f", h1, 0));
        assert_ne!(a, ActionId::child(root, "e.f", h1, 1));
        assert_ne!(a, ActionId::child(root, "e.g", h1, 0));
        assert_ne!(a, ActionId::child(root, "e.f", h2, 0));
        assert_ne!(a, ActionId::child(a, "e.f", h1, 0));
        assert_eq!(a.to_string().len(), 32);
    }
}
