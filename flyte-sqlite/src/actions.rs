//! How actions are kept: the thread that ends an action packs its record
//! into its run's open batch, and the writer stores each batch as one row.
//!
//! A row per action costs SQLite about 2.4 us on the 2-core machine of
//! BENCHMARKS.md, more than a trivial task takes to run; a row per batch
//! costs the packing. Packing where the action ends (instead of handing a
//! boxed record to the writer) keeps the writer from allocating, freeing and
//! encoding on behalf of every action: on 2 cores its CPU time is taken from
//! the tasks.
//!
//! A record is compact (about 30 bytes for a trivial item): what an action
//! shares with its siblings (task, parent, fan-out, group: its *context*) is
//! written once per batch in one of a few slots and named by its slot after
//! that; an item's index is written as the step from the previous item of
//! its context, its start as the step from the previous record's start, its
//! end as its duration, its queueing as how long it waited before it
//! began, all in microseconds, and the times of its attempts when it had
//! more than one. Every value is in the codec's encoding (varints), packed
//! field by field. Records written before flyte kept microseconds (their
//! flags without [`MICROS`]) have millisecond times and no waits.

use flyte_core::codec::{self, Packer};
use flyte_core::record::{
    from_micros as time_us, micros, ActionRecord, ActionStatus, AttemptTimes, Origin,
};
use flyte_core::store::{ActionEnd, OutputRef, MAX_STORED_VALUE};
use flyte_core::{ActionId, TaskError};
use serde::Deserialize;
use std::sync::Arc;

/// The largest output a record keeps ([`MAX_STORED_VALUE`]): a batch
/// holds the output beside other records (a batch past [`SEALED`] takes no
/// more). A larger output is left out of its record, and the run is told
/// (`StoreError::TooLarge`).
pub(crate) const MAX_VALUE: usize = MAX_STORED_VALUE;

/// A batch this large takes no more records: the next go into a new one,
/// so that a row stays under SQLite's limit (see [`MAX_VALUE`]).
pub(crate) const SEALED: usize = 64 << 20;

/// Why an action's output was left out of its record.
#[derive(Debug)]
pub(crate) enum LeftOut {
    /// It is this many bytes, over [`MAX_VALUE`].
    TooLarge(usize),
    /// It does not encode.
    Unencodable(TaskError),
}

/// Set in a record's flags when its times are in microseconds, with its
/// wait and its attempts' times (every record this version writes).
const MICROS: u8 = 0x40;

/// The room a batch starts with.
const BATCH_CAPACITY: usize = 16 * 1024;

/// Contexts a batch remembers at once; a new one takes the oldest slot.
const SLOTS: usize = 8;

/// What an action shares with its siblings.
#[derive(Debug, Clone, PartialEq)]
struct Context {
    task: &'static str,
    parent: Option<ActionId>,
    fan_out: Option<ActionId>,
    group: Option<Arc<str>>,
}

impl Context {
    fn of(end: &ActionEnd<'_>) -> Self {
        Context {
            task: end.task,
            parent: end.parent,
            fan_out: end.item.map(|(fan_out, _)| fan_out),
            group: end.group.cloned(),
        }
    }

    fn matches(&self, end: &ActionEnd<'_>) -> bool {
        // The task name is a `&'static str` from the task's definition: the
        // same task gives the same pointer, so most checks skip the bytes.
        (std::ptr::eq(self.task, end.task) || self.task == end.task)
            && self.parent == end.parent
            && self.fan_out == end.item.map(|(fan_out, _)| fan_out)
            && match (&self.group, end.group) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                _ => false,
            }
    }
}

/// One run's actions, packed as they end; the writer stores it as a row.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) run: i64,
    pub(crate) count: u32,
    pub(crate) bytes: Vec<u8>,
    slots: [Option<(Context, u64)>; SLOTS],
    next_slot: usize,
    /// The slot of the previous record.
    last_slot: usize,
    last_started: i64,
}

/// A record as read back; [`Batch::push`] packs these fields in this order.
#[derive(Deserialize)]
struct RecordIn {
    flags: u8,
    slot: u8,
    context: Option<ContextIn>,
    id: ActionId,
    index_step: i64,
    attempts: u32,
    /// From the previous record's start, in microseconds.
    started_step: i64,
    took_us: u64,
    /// From when it was queued to when it began.
    waited_us: u64,
    /// Each attempt's start (from the action's) and length, when it had
    /// more than one.
    attempt_times: Vec<(u64, u64)>,
    error: Option<TaskError>,
    output: Option<BytesIn>,
}

/// A record written before flyte kept microseconds (no [`MICROS`] flag).
#[derive(Deserialize)]
struct RecordInMillis {
    flags: u8,
    slot: u8,
    context: Option<ContextIn>,
    id: ActionId,
    index_step: i64,
    attempts: u32,
    started_step: i64,
    took_ms: u64,
    error: Option<TaskError>,
    output: Option<BytesIn>,
}

impl From<RecordInMillis> for RecordIn {
    fn from(r: RecordInMillis) -> RecordIn {
        RecordIn {
            flags: r.flags,
            slot: r.slot,
            context: r.context,
            id: r.id,
            index_step: r.index_step,
            attempts: r.attempts,
            started_step: r.started_step.saturating_mul(1_000),
            took_us: r.took_ms.saturating_mul(1_000),
            waited_us: 0,
            attempt_times: Vec::new(),
            error: r.error,
            output: r.output,
        }
    }
}

#[derive(Deserialize, Clone)]
struct ContextIn {
    task: String,
    parent: Option<ActionId>,
    fan_out: Option<ActionId>,
    group: Option<String>,
}

struct BytesIn(Vec<u8>);

impl<'de> Deserialize<'de> for BytesIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = BytesIn;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an output's bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<BytesIn, E> {
                Ok(BytesIn(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<BytesIn, E> {
                Ok(BytesIn(v))
            }
        }
        d.deserialize_byte_buf(Visit)
    }
}

impl Batch {
    /// An empty batch of run `run`'s actions.
    pub(crate) fn new(run: i64) -> Batch {
        Batch {
            run,
            count: 0,
            bytes: Vec::with_capacity(BATCH_CAPACITY),
            slots: Default::default(),
            next_slot: 0,
            last_slot: 0,
            last_started: 0,
        }
    }

    /// Packs `end` after the records already in the batch. Says why, when
    /// its output was left out (the rest of the record is packed).
    ///
    /// # Errors
    ///
    /// When the action's error does not encode (nothing is added then).
    pub(crate) fn push(&mut self, end: &ActionEnd<'_>) -> Result<Option<LeftOut>, TaskError> {
        let in_slot = |slot: usize| {
            self.slots[slot]
                .as_ref()
                .is_some_and(|(c, _)| c.matches(end))
        };
        // Most records share the previous record's context: try it first.
        let found = if in_slot(self.last_slot) {
            Some(self.last_slot)
        } else {
            (0..SLOTS).find(|&slot| in_slot(slot))
        };
        let (slot, new_context) = match found {
            Some(slot) => (slot, None),
            None => (self.next_slot, Some(Context::of(end))),
        };
        let index = end.item.map_or(0, |(_, index)| index);
        let last_index = match &new_context {
            Some(_) => 0,
            None => self.slots[slot].as_ref().map_or(0, |(_, last)| *last),
        };
        let started = micros(end.started_at);
        let ended = micros(end.ended_at);
        let queued = micros(end.queued_at);
        // The fields of `RecordIn`, in its order.
        let mark = self.bytes.len();
        self.bytes.reserve(64);
        let mut p = Packer::new(&mut self.bytes);
        p.u8(end.status.code() | end.origin.code() << 2 | MICROS)
            .u8(slot as u8)
            .option(new_context.as_ref(), |p, c| {
                p.str(c.task)
                    .option(c.parent, |p, id| {
                        p.u128(id.0);
                    })
                    .option(c.fan_out, |p, id| {
                        p.u128(id.0);
                    })
                    .option(c.group.as_deref(), |p, g| {
                        p.str(g);
                    });
            })
            .u128(end.id.0)
            .i64((index as i64).wrapping_sub(last_index as i64))
            .u64(u64::from(end.attempts))
            .i64(started.wrapping_sub(self.last_started))
            .u64(u64::try_from(ended.saturating_sub(started)).unwrap_or(0))
            .u64(u64::try_from(started.saturating_sub(queued)).unwrap_or(0))
            .u64(end.attempt_times.len() as u64);
        for attempt in end.attempt_times {
            let (from, to) = (micros(attempt.started_at), micros(attempt.ended_at));
            p.u64(u64::try_from(from.saturating_sub(started)).unwrap_or(0))
                .u64(u64::try_from(to.saturating_sub(from)).unwrap_or(0));
        }
        let packed = match end.error {
            None => Ok(p.u8(0)),
            Some(error) => p.u8(1).value(error),
        };
        if let Err(e) = packed {
            self.bytes.truncate(mark);
            return Err(e);
        }
        let left_out = self.pack_output(end);
        if let Some(context) = new_context {
            self.next_slot = (slot + 1) % SLOTS;
            self.slots[slot] = Some((context, index));
        } else if let Some((_, last)) = &mut self.slots[slot] {
            *last = index;
        }
        self.last_slot = slot;
        self.last_started = started;
        self.count += 1;
        Ok(left_out)
    }
}

impl Batch {
    /// Packs the output field: `None`, or `Some` and the output's bytes.
    /// An output over [`MAX_VALUE`], or one that does not encode, is
    /// packed as `None`, and said why.
    fn pack_output(&mut self, end: &ActionEnd<'_>) -> Option<LeftOut> {
        match &end.output {
            None => {
                Packer::new(&mut self.bytes).u8(0);
            }
            Some(OutputRef::Bytes(bytes)) if bytes.len() > MAX_VALUE => {
                Packer::new(&mut self.bytes).u8(0);
                return Some(LeftOut::TooLarge(bytes.len()));
            }
            Some(OutputRef::Bytes(bytes)) => {
                Packer::new(&mut self.bytes).u8(1).bytes(bytes);
            }
            Some(OutputRef::Encode(encode)) => {
                // Encoded in place, after a one-byte length (an output of up
                // to 250 bytes, as most are); a longer one moves over to make
                // room for its longer length.
                let tag = self.bytes.len();
                self.bytes.extend_from_slice(&[1, 0]);
                let start = self.bytes.len();
                if let Err(e) = encode(&mut self.bytes) {
                    self.bytes.truncate(tag);
                    self.bytes.push(0);
                    return Some(LeftOut::Unencodable(e));
                }
                let len = self.bytes.len() - start;
                if len > MAX_VALUE {
                    self.bytes.truncate(tag);
                    self.bytes.push(0);
                    self.bytes.shrink_to(BATCH_CAPACITY.max(self.bytes.len()));
                    return Some(LeftOut::TooLarge(len));
                }
                match u8::try_from(len) {
                    Ok(short) if short <= 250 => self.bytes[start - 1] = short,
                    _ => {
                        let mut prefix = Vec::with_capacity(9);
                        Packer::new(&mut prefix).u64(len as u64);
                        self.bytes.splice(start - 1..start, prefix);
                    }
                }
            }
        }
        None
    }
}

/// Decodes a row's bytes back into the actions of the batch.
pub(crate) fn decode_batch(bytes: &[u8]) -> Result<Vec<ActionRecord>, TaskError> {
    let mut reader = codec::Reader::new(bytes);
    let mut slots: [Option<(ContextIn, u64)>; SLOTS] = Default::default();
    let mut last_started = 0_i64;
    let mut actions = Vec::new();
    while !reader.is_empty() {
        let r: RecordIn = match reader.peek_byte() {
            Some(flags) if flags & MICROS != 0 => reader.read()?,
            _ => reader.read::<RecordInMillis>()?.into(),
        };
        let slot = slots.get_mut(usize::from(r.slot)).ok_or_else(|| {
            TaskError::new(
                flyte_core::ErrorKind::Input,
                format!("a record names context slot {}", r.slot),
            )
        })?;
        if let Some(context) = r.context {
            *slot = Some((context, 0));
        }
        let Some((context, last_index)) = slot else {
            return Err(TaskError::new(
                flyte_core::ErrorKind::Input,
                format!("a record names empty context slot {}", r.slot),
            ));
        };
        let index = (*last_index as i64).wrapping_add(r.index_step) as u64;
        *last_index = index;
        let started = last_started.wrapping_add(r.started_step);
        last_started = started;
        let span = |from: i64, us: u64| from.saturating_add(i64::try_from(us).unwrap_or(i64::MAX));
        let ended = span(started, r.took_us);
        let mut action = ActionRecord::new(
            r.id,
            context.task.clone(),
            ActionStatus::from_code(r.flags),
            time_us(started),
            Some(time_us(ended)),
        );
        action.queued_at = time_us(started.saturating_sub(i64::try_from(r.waited_us).unwrap_or(0)));
        action.attempt_times = r
            .attempt_times
            .iter()
            .map(|&(from, took)| AttemptTimes {
                started_at: time_us(span(started, from)),
                ended_at: time_us(span(span(started, from), took)),
            })
            .collect();
        action.parent = context.parent;
        action.item = context.fan_out.map(|fan_out| (fan_out, index));
        action.group = context.group.clone();
        action.attempts = r.attempts;
        action.error = r.error;
        action.origin = Origin::from_code((r.flags >> 2) & 0b11);
        action.output_bytes = r.output.map(|b| b.0);
        actions.push(action);
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyte_core::ErrorKind;
    use std::time::{Duration, SystemTime};

    /// `us` microseconds after a fixed instant.
    fn at(us: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_000 + us)
    }

    static ATTEMPTS: std::sync::OnceLock<Vec<AttemptTimes>> = std::sync::OnceLock::new();

    #[test]
    fn a_batch_round_trips() {
        let group: Arc<str> = "outer/inner".into();
        let error = TaskError::new(ErrorKind::User, "boom");
        let item =
            |i: u64, output: Option<&'static [u8]>, error: Option<&'static TaskError>| ActionEnd {
                id: ActionId(u128::from(i) << 100),
                parent: Some(ActionId(7)),
                item: Some((ActionId(9), i)),
                task: "env.task",
                group: None,
                status: if error.is_some() {
                    ActionStatus::Failed
                } else {
                    ActionStatus::Succeeded
                },
                attempts: 2,
                queued_at: at(1 + i),
                started_at: at(5_001 + i),
                ended_at: at(8_003 + 2 * i),
                attempt_times: ATTEMPTS.get_or_init(|| {
                    vec![
                        AttemptTimes {
                            started_at: at(5_020),
                            ended_at: at(6_002),
                        },
                        AttemptTimes {
                            started_at: at(7_500),
                            ended_at: at(8_003),
                        },
                    ]
                }),
                error,
                origin: Origin::Cached,
                output: output.map(OutputRef::Bytes),
            };
        let error: &'static TaskError = Box::leak(Box::new(error));
        let mut batch = Batch::new(1);
        let mut ends = vec![
            item(1, Some(&[1, 2, 3]), None),
            item(0, None, Some(error)),
            item(5, Some(&[]), None),
        ];
        let mut root = item(0, Some(&[4]), None);
        root.item = None;
        root.parent = None;
        root.group = Some(&group);
        root.task = "env.root";
        ends.push(root);
        // Nine more contexts than slots: each takes the oldest slot.
        let mut others: Vec<ActionEnd<'_>> = (0..9_u64)
            .map(|k| {
                let mut e = item(k, Some(&[7]), None);
                e.item = Some((ActionId(100 + u128::from(k)), k));
                e
            })
            .collect();
        ends.append(&mut others);
        ends.push(item(6, None, None)); // its context was pushed out: written again
        for end in &ends {
            batch.push(end).unwrap();
        }
        assert_eq!(batch.count as usize, ends.len());
        let back = decode_batch(&batch.bytes).unwrap();
        assert_eq!(back.len(), ends.len());
        assert!(back[0].started_at > back[1].started_at); // a step back in time
        for (end, got) in ends.iter().zip(&back) {
            assert_eq!(got.id, end.id);
            assert_eq!(got.parent, end.parent);
            assert_eq!(got.item, end.item);
            assert_eq!(got.task, end.task);
            assert_eq!(got.group.as_deref(), end.group.map(|g| &**g));
            assert_eq!(got.status, end.status);
            assert_eq!(got.attempts, end.attempts);
            assert_eq!(got.queued_at, end.queued_at);
            assert_eq!(got.started_at, end.started_at);
            assert_eq!(got.ended_at, Some(end.ended_at));
            assert_eq!(got.attempt_times, end.attempt_times);
            assert_eq!(
                got.error.as_ref().map(TaskError::message),
                end.error.map(TaskError::message)
            );
            assert_eq!(got.origin, end.origin);
            let want = match end.output {
                Some(OutputRef::Bytes(b)) => Some(b),
                _ => None,
            };
            assert_eq!(got.output_bytes.as_deref(), want);
        }
    }

    #[test]
    fn a_trivial_item_takes_few_bytes() {
        let mut batch = Batch::new(1);
        for i in 0..1_000_u64 {
            let value = i * 2;
            let encode = |buf: &mut Vec<u8>| codec::encode_into(&value, buf);
            batch
                .push(&ActionEnd {
                    id: ActionId(u128::MAX / 3 * u128::from(i % 3)),
                    parent: Some(ActionId(u128::MAX / 7)),
                    item: Some((ActionId(u128::MAX / 5), i)),
                    task: "default.trivial",
                    group: None,
                    status: ActionStatus::Succeeded,
                    attempts: 1,
                    // A trivial item: queued, begun and ended within
                    // microseconds, a few microseconds after the last.
                    queued_at: at(i * 3),
                    started_at: at(i * 3 + 9),
                    ended_at: at(i * 3 + 11),
                    attempt_times: &[],
                    error: None,
                    origin: Origin::Executed,
                    output: Some(OutputRef::Encode(&encode)),
                })
                .unwrap();
        }
        let per_action = batch.bytes.len() / 1_000;
        assert!(per_action <= 30, "{per_action} bytes per action");
        let back = decode_batch(&batch.bytes).unwrap();
        assert_eq!(back[999].output::<u64>().unwrap(), Some(1998));
        assert_eq!(back[999].item.map(|(_, i)| i), Some(999));
    }

    #[test]
    fn records_kept_in_milliseconds_still_read() {
        // A record as flyte wrote them before it kept microseconds: no
        // MICROS flag, the start as a step in ms, the length in ms, no
        // wait, no attempts' times.
        let mut bytes = Vec::new();
        let mut p = Packer::new(&mut bytes);
        p.u8(ActionStatus::Succeeded.code() | Origin::Cached.code() << 2)
            .u8(0)
            .u8(1)
            .str("env.old")
            .u8(0)
            .u8(0)
            .u8(0)
            .u128(42)
            .i64(0)
            .u64(1)
            .i64(1_700_000_000_123)
            .u64(250)
            .u8(0)
            .u8(0);
        let back = decode_batch(&bytes).unwrap();
        let ms = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(back[0].started_at, ms(1_700_000_000_123));
        assert_eq!(back[0].ended_at, Some(ms(1_700_000_000_373)));
        assert_eq!(back[0].queued_at, back[0].started_at);
        assert!(back[0].attempt_times.is_empty());
        assert_eq!(back[0].origin, Origin::Cached);
        assert_eq!(back[0].task, "env.old");
    }

    #[test]
    fn outputs_of_every_length_round_trip() {
        let mut batch = Batch::new(1);
        let outputs: Vec<String> = [0, 1, 249, 250, 251, 70_000]
            .iter()
            .map(|&n| "x".repeat(n))
            .collect();
        for (i, text) in outputs.iter().enumerate() {
            let encode = |buf: &mut Vec<u8>| codec::encode_into(text, buf);
            batch
                .push(&ActionEnd {
                    id: ActionId(i as u128),
                    parent: None,
                    item: None,
                    task: "t",
                    group: None,
                    status: ActionStatus::Succeeded,
                    attempts: 1,
                    queued_at: at(0),
                    started_at: at(0),
                    ended_at: at(1),
                    attempt_times: &[],
                    error: None,
                    origin: Origin::Executed,
                    output: Some(OutputRef::Encode(&encode)),
                })
                .unwrap();
        }
        let back = decode_batch(&batch.bytes).unwrap();
        for (text, got) in outputs.iter().zip(&back) {
            assert_eq!(got.output::<String>().unwrap().as_ref(), Some(text));
        }
    }

    #[test]
    fn damaged_bytes_are_an_error() {
        assert!(decode_batch(&[0, 9, 0]).is_err());
        assert!(decode_batch(&[0xFF; 40]).is_err());
    }
}
