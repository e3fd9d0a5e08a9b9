//! Tree growth: depth-first (`DepthFirstTreeBuilder`) and, with a leaf
//! budget, best-first (`BestFirstTreeBuilder`, whose frontier is a binary
//! heap ordered exactly as libstdc++'s `push_heap`/`pop_heap` order it, so
//! equal improvements expand in scikit-learn's order).

use super::splitter::{Split, Splitter};
use crate::data::tree::{Node, Tree, LEAF};

const EPSILON: f64 = f64::EPSILON;

/// Stopping rules, already resolved against the training size.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub min_weight_leaf: f64,
    pub min_impurity_decrease: f64,
    pub max_features: usize,
    /// Best-first growth with this many leaves at most.
    pub max_leaf_nodes: Option<usize>,
}

struct Grower<'s, 'a> {
    splitter: &'s mut Splitter<'a>,
    limits: &'s Limits,
    nodes: Vec<Node>,
    values: Vec<f64>,
}

/// What one node became.
#[derive(Clone, Copy)]
struct Record {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    split: Option<Split>,
}

impl<'s, 'a> Grower<'s, 'a> {
    fn new(splitter: &'s mut Splitter<'a>, limits: &'s Limits) -> Self {
        Grower {
            splitter,
            limits,
            nodes: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Adds the node `samples[start..end]` under `parent`, split if allowed.
    fn add(
        &mut self,
        (start, end, depth): (usize, usize, usize),
        parent: Option<(usize, bool)>,
        impurity: f64,
        n_constants: &mut usize,
    ) -> Record {
        let weight = self.splitter.node_reset(start, end);
        let n = end - start;
        let l = self.limits;
        let leaf = depth >= l.max_depth
            || n < l.min_samples_split
            || n < 2 * l.min_samples_leaf
            || weight < 2.0 * l.min_weight_leaf
            || impurity <= EPSILON;
        let split = if leaf {
            None
        } else {
            self.splitter
                .split_best(start, end, impurity, n_constants)
                .filter(|s| s.pos < end && s.improvement + EPSILON >= l.min_impurity_decrease)
        };
        let id = self.nodes.len();
        if let Some((parent, is_left)) = parent {
            let p = &mut self.nodes[parent];
            *(if is_left { &mut p.left } else { &mut p.right }) = id as u32;
        }
        self.nodes.push(Node {
            left: LEAF,
            right: LEAF,
            feature: split.map_or(0, |s| s.feature as u32),
            threshold: split.map_or(-2.0, |s| s.threshold),
            missing_go_to_left: split.is_some_and(|s| s.missing_go_to_left),
        });
        self.values.extend(self.splitter.criterion.node_value());
        Record {
            node: id,
            start,
            end,
            depth,
            split,
        }
    }

    fn finish(self, n_features: usize, values_per_node: usize) -> Tree {
        Tree {
            n_features,
            nodes: self.nodes,
            values: self.values,
            values_per_node,
        }
    }
}

/// Grows a tree depth-first, left child first.
pub fn depth_first(splitter: &mut Splitter<'_>, limits: &Limits, shape: (usize, usize)) -> Tree {
    let root_end = splitter.samples.len();
    let mut g = Grower::new(splitter, limits);
    // (start, end, depth, parent, impurity, n_constant_features)
    let mut stack = vec![(0, root_end, 0, None, f64::INFINITY, 0)];
    let mut first = true;
    while let Some((start, end, depth, parent, mut impurity, mut n_constants)) = stack.pop() {
        if first {
            g.splitter.node_reset(start, end);
            impurity = g.splitter.criterion.node_impurity();
            first = false;
        }
        let record = g.add((start, end, depth), parent, impurity, &mut n_constants);
        if let Some(s) = record.split {
            let id = record.node;
            stack.push((
                s.pos,
                end,
                depth + 1,
                Some((id, false)),
                s.impurity_right,
                n_constants,
            ));
            stack.push((
                start,
                s.pos,
                depth + 1,
                Some((id, true)),
                s.impurity_left,
                n_constants,
            ));
        }
    }
    g.finish(shape.0, shape.1)
}

/// Grows at most `max_leaf_nodes` leaves, always expanding the frontier
/// node whose split improves impurity most.
pub fn best_first(
    splitter: &mut Splitter<'_>,
    limits: &Limits,
    max_leaf_nodes: usize,
    shape: (usize, usize),
) -> Tree {
    let root_end = splitter.samples.len();
    let mut g = Grower::new(splitter, limits);
    g.splitter.node_reset(0, root_end);
    let root_impurity = g.splitter.criterion.node_impurity();
    let mut frontier: Vec<(f64, Record)> = Vec::new();
    let root = g.add((0, root_end, 0), None, root_impurity, &mut 0);
    push_heap(&mut frontier, (improvement(&root), root));
    let mut max_split_nodes = max_leaf_nodes.saturating_sub(1);
    while let Some((_, record)) = pop_heap(&mut frontier) {
        let Some(split) = record.split.filter(|_| max_split_nodes > 0) else {
            let node = &mut g.nodes[record.node];
            node.feature = 0;
            node.threshold = -2.0;
            continue;
        };
        max_split_nodes -= 1;
        let depth = record.depth + 1;
        let parent = record.node;
        let left = g.add(
            (record.start, split.pos, depth),
            Some((parent, true)),
            split.impurity_left,
            &mut 0,
        );
        let right = g.add(
            (split.pos, record.end, depth),
            Some((parent, false)),
            split.impurity_right,
            &mut 0,
        );
        push_heap(&mut frontier, (improvement(&left), left));
        push_heap(&mut frontier, (improvement(&right), right));
    }
    g.finish(shape.0, shape.1)
}

fn improvement(record: &Record) -> f64 {
    record.split.map_or(0.0, |s| s.improvement)
}

/// libstdc++'s `push_heap` with `a < b` on improvements (a max-heap).
fn push_heap<T: Copy>(heap: &mut Vec<(f64, T)>, item: (f64, T)) {
    heap.push(item);
    let len = heap.len();
    sift_up(heap, len - 1, 0, item);
}

fn sift_up<T: Copy>(heap: &mut [(f64, T)], mut hole: usize, top: usize, item: (f64, T)) {
    while hole > top {
        let parent = (hole - 1) / 2;
        if heap[parent].0.partial_cmp(&item.0) != Some(std::cmp::Ordering::Less) {
            break;
        }
        heap[hole] = heap[parent];
        hole = parent;
    }
    heap[hole] = item;
}

/// libstdc++'s `pop_heap` followed by `pop_back`.
fn pop_heap<T: Copy>(heap: &mut Vec<(f64, T)>) -> Option<(f64, T)> {
    let len = heap.len();
    if len <= 1 {
        return heap.pop();
    }
    let last = heap[len - 1];
    heap[len - 1] = heap[0];
    adjust_heap(&mut heap[..len - 1], last);
    heap.pop()
}

/// libstdc++'s `__adjust_heap` from the root of `heap`.
fn adjust_heap<T: Copy>(heap: &mut [(f64, T)], item: (f64, T)) {
    let len = heap.len();
    let mut hole = 0;
    let mut child = 0;
    while child < len.saturating_sub(1) / 2 {
        child = 2 * (child + 1);
        if heap[child].0 < heap[child - 1].0 {
            child -= 1;
        }
        heap[hole] = heap[child];
        hole = child;
    }
    if len.is_multiple_of(2) && child == (len.saturating_sub(2)) / 2 {
        child = 2 * (child + 1);
        heap[hole] = heap[child - 1];
        hole = child - 1;
    }
    sift_up(heap, hole, 0, item);
}
