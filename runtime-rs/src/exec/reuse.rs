//! Deciding, before a run, which nodes the cache already answers.
//!
//! Walking from the outputs back towards the sources, a node that is needed
//! is looked up; a hit makes its inputs unnecessary (for that node), a miss
//! makes it computed and its inputs needed. A repeated pipeline therefore
//! costs one lookup of its score per fold, and a new model on a cached
//! prefix reads the prefix's matrices and computes only the model.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::cache::{Entry, Key, NodeCache};
use crate::data::{Kind, Value};
use crate::error::{Result, RuntimeError};
use crate::plan::{Op, Plan};

/// How a node enters the run.
pub(super) enum Start {
    /// Nothing needs it.
    Skip,
    /// Served by the cache.
    Ready(Value),
    /// Computed.
    Compute,
}

/// The start of every node, and the cache key of every keyed node.
pub(super) fn plan_reuse(
    plan: &Plan,
    kinds: &[Kind],
    cache: Option<&NodeCache>,
    cancel: &AtomicBool,
) -> Result<(Vec<Start>, Vec<Option<Key>>)> {
    let n = plan.nodes.len();
    let keys: Vec<Option<Key>> = plan
        .nodes
        .iter()
        .map(|node| match cache {
            Some(_) => node.key.as_deref().map(Key::for_node),
            None => None,
        })
        .collect();
    let mut needed = vec![false; n];
    for &out in &plan.outputs {
        needed[out as usize] = true;
    }
    let mut start: Vec<Start> = (0..n).map(|_| Start::Skip).collect();
    for id in (0..n).rev() {
        let node = &plan.nodes[id];
        if !needed[id] || matches!(node.op, Op::SourceX | Op::SourceY { .. }) {
            continue;
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(RuntimeError::Interrupted);
        }
        let hit = match (cache, &keys[id]) {
            (Some(cache), Some(key)) => cache.get(key, |entry| serves(entry, kinds[id], &node.op)),
            _ => None,
        };
        if let Some(Entry::Value(value)) = hit {
            start[id] = Start::Ready(value);
            continue;
        }
        start[id] = Start::Compute;
        for &input in &node.inputs {
            needed[input as usize] = true;
        }
    }
    Ok((start, keys))
}

/// Whether a stored entry can stand for a node of kind `kind` computing `op`.
fn serves(entry: &Entry, kind: Kind, op: &Op) -> bool {
    let Entry::Value(value) = entry else {
        return false;
    };
    if value.kind() != kind {
        return false;
    }
    match (op, value) {
        // The key leaves k out (every KNN variant shares a search): a stored
        // search serves any request for at most as many neighbours.
        (Op::Neighbors { k }, Value::Neighbors(found)) => {
            found.k() >= (*k as usize).min(found.n_train())
        }
        _ => true,
    }
}
