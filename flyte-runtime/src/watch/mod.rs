//! Watching a run: the sink every start and end of a run, fan-out, action
//! and attempt goes through, with its listeners (`sink`), and the listener
//! that makes tracing spans of them (`spans`). The other listeners live
//! with what they serve: the store's recorder in `durability`, the
//! progress board in `progress`.

pub(crate) mod sink;
pub(crate) mod spans;
