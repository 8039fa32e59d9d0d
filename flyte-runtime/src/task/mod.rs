//! What a call is, below everything that runs, records or names one: a
//! task applied to its inputs (`call`: `TaskCall`, its per-call settings)
//! and the type-erased body behind it (`body`: runs, hashes, encodes and
//! decodes a call without knowing its input type).

pub(crate) mod body;
pub(crate) mod call;
