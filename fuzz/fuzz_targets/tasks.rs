// Tasks whose parameters cover what users pass: strings, byte buffers,
// sequences, maps, options, enums, and a recursive type.

use flyte::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Serialize, Deserialize)]
pub enum Tree {
    Leaf(i64),
    Node(Vec<Tree>),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub tags: Vec<String>,
    pub scores: HashMap<String, f64>,
    pub parent: Option<Box<Record>>,
}

#[task]
pub fn text(s: String, n: u64) -> usize {
    s.len() + n as usize
}

#[task]
pub fn blobs(data: Vec<u8>, more: Vec<Vec<u8>>) -> usize {
    data.len() + more.len()
}

#[task]
pub fn tree(t: Tree) -> usize {
    match t {
        Tree::Leaf(_) => 1,
        Tree::Node(c) => c.len(),
    }
}

#[task]
pub fn record(r: Record, index: BTreeMap<u32, (char, bool)>) -> usize {
    r.tags.len() + index.len()
}

/// The task names, for targets that pick one from the input.
pub const NAMES: [&str; 4] = [
    "default.text",
    "default.blobs",
    "default.tree",
    "default.record",
];
