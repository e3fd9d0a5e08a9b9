//! Semantic attacks on well-formed plans: random rewirings whose effect is
//! not predicted, then one targeted change whose outcome is.

use _runtime::data::Kind;
use _runtime::plan::{Node, Op, Plan, MAX_INPUTS};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use crate::fixtures::BAD_INDICES;
use crate::oracle::Expect;
use crate::strategies::{column, pick};

/// A rewiring after which anything may happen.
#[derive(Debug, Clone)]
pub enum Twist {
    Rewire { node: Index, slot: Index, to: u32 },
    Swap { a: Index, b: Index },
    Remove { node: Index },
    Outputs(Vec<u32>),
}

pub fn twist() -> impl Strategy<Value = Twist> {
    let id = prop_oneof![4 => 0u32..40, 1 => any::<u32>()];
    prop_oneof![
        (any::<Index>(), any::<Index>(), id.clone()).prop_map(|(node, slot, to)| Twist::Rewire {
            node,
            slot,
            to
        }),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Twist::Swap { a, b }),
        any::<Index>().prop_map(|node| Twist::Remove { node }),
        vec(id, 0..4).prop_map(Twist::Outputs),
    ]
}

/// Points input `slot` of `node` at `to` (a new input when it has none).
fn rewire(plan: &mut Plan, node: usize, slot: &Index, to: u32) {
    let inputs = &mut plan.nodes[node].inputs;
    match pick(slot, inputs.len()) {
        Some(slot) => inputs[slot] = to,
        None => inputs.push(to),
    }
}

pub fn apply_twist(plan: &mut Plan, twist: &Twist) {
    let n = plan.nodes.len();
    match twist {
        Twist::Rewire { node, slot, to } => {
            if let Some(node) = pick(node, n) {
                rewire(plan, node, slot, *to);
            }
        }
        Twist::Swap { a, b } => {
            if let (Some(a), Some(b)) = (pick(a, n), pick(b, n)) {
                plan.nodes.swap(a, b);
            }
        }
        Twist::Remove { node } => {
            if let Some(node) = pick(node, n) {
                plan.nodes.remove(node);
            }
        }
        Twist::Outputs(outputs) => plan.outputs.clone_from(outputs),
    }
}

/// A last, targeted change whose outcome is known, to the node `node`
/// picks; `other` picks an input slot or a name where the change needs one.
#[derive(Debug, Clone)]
pub struct Attack {
    node: Index,
    other: Index,
    strike: Strike,
}

#[derive(Debug, Clone)]
enum Strike {
    Nothing,
    /// Input `other` of the node reads the node this many places after it
    /// (itself when 0).
    ForwardRef(u32),
    /// One input more (`true`) or fewer than the node's op reads.
    WrongArity(bool),
    /// Input `other` of a well-typed node reads an earlier node of a kind
    /// its op refuses, picked by this.
    WrongKind(Index),
    /// The node becomes an `hstack` of more than `MAX_INPUTS` inputs.
    TooManyInputs,
    /// An output names the node this many places past the last.
    BadOutput(u32),
    Version(u32),
    /// All nodes go; an output stays (`true`) or not.
    NoNodes(bool),
    /// A target (`true`) or row index gets a name (`other` picks it) the
    /// data lacks.
    UnknownName(bool),
    /// A row index gets a name (`other` picks it) whose rows are out of
    /// range.
    BadRows,
    /// A `select_cols` with these columns.
    BadCols(Vec<u32>),
}

pub fn attack() -> impl Strategy<Value = Attack> {
    let strike = prop_oneof![
        12 => Just(Strike::Nothing),
        2 => prop_oneof![2 => Just(0u32), 2 => 1u32..4, 1 => any::<u32>()]
            .prop_map(Strike::ForwardRef),
        1 => any::<bool>().prop_map(Strike::WrongArity),
        2 => any::<Index>().prop_map(Strike::WrongKind),
        1 => Just(Strike::TooManyInputs),
        1 => prop_oneof![0u32..3, Just(u32::MAX)].prop_map(Strike::BadOutput),
        1 => select(&[0, 2, u32::MAX][..]).prop_map(Strike::Version),
        1 => any::<bool>().prop_map(Strike::NoNodes),
        2 => any::<bool>().prop_map(Strike::UnknownName),
        1 => Just(Strike::BadRows),
        1 => vec(column(), 0..4).prop_map(Strike::BadCols),
    ];
    (any::<Index>(), any::<Index>(), strike).prop_map(|(node, other, strike)| Attack {
        node,
        other,
        strike,
    })
}

const UNKNOWN_NAMES: [&str; 6] = ["nope", "", "TR", "tr ", "y\u{0}", "\u{1F600}"];

/// Kinds input `slot` of `op` accepts in some well-typed use.
fn accepted(op: &Op, slot: usize) -> &'static [Kind] {
    use Kind::*;
    match (op, slot) {
        (Op::SourceX | Op::SourceY { .. }, _) => unreachable!("sources read nothing"),
        (Op::TakeRows { .. }, _) => &[Matrix, Vector],
        (Op::SelectCols { .. } | Op::Hstack | Op::Neighbors { .. }, _) => &[Matrix],
        (Op::Fit { .. } | Op::Gram { .. }, 0) | (Op::Apply, 1) => &[Matrix],
        (Op::KnnPredict { .. }, 0) => &[Neighbors],
        (Op::Fit { .. } | Op::Gram { .. } | Op::KnnPredict { .. }, _) | (Op::Score { .. }, 0) => {
            &[Vector]
        }
        (Op::Apply, _) => &[Transformer, Model],
        (Op::Solve { .. }, _) => &[Gram],
        (Op::Score { .. }, _) => &[Prediction],
    }
}

/// Kinds of the longest well-typed prefix of `plan`'s nodes.
fn typed_prefix(plan: &Plan) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for node in &plan.nodes {
        let ins: Option<Vec<Kind>> = node
            .inputs
            .iter()
            .map(|&i| kinds.get(i as usize).copied())
            .collect();
        match ins.map(|ins| node.op.output_kind(&ins)) {
            Some(Ok(kind)) => kinds.push(kind),
            _ => break,
        }
    }
    kinds
}

/// Renames the target (`target`) or row index of a node, or appends nodes
/// reading `name`; either way the plan's typing is unchanged.
fn rename(plan: &mut Plan, node: &Index, name: &str, target: bool) {
    let named: Vec<usize> = (0..plan.nodes.len())
        .filter(|&i| match plan.nodes[i].op {
            Op::SourceY { .. } => target,
            Op::TakeRows { .. } => !target,
            _ => false,
        })
        .collect();
    let name = name.to_string();
    match pick(node, named.len()).map(|i| &mut plan.nodes[named[i]].op) {
        Some(Op::SourceY { target }) => *target = name,
        Some(Op::TakeRows { index }) => *index = name,
        _ if target => append(plan, Op::SourceY { target: name }),
        _ => append(plan, Op::TakeRows { index: name }),
    }
}

/// Appends `op`, reading a new `source_x` node unless it is a source.
fn append(plan: &mut Plan, op: Op) {
    let mut inputs = vec![];
    if op.output_kind(&[]).is_err() {
        inputs.push(plan.nodes.len() as u32);
        plan.nodes.push(Node {
            op: Op::SourceX,
            inputs: vec![],
            key: None,
        });
    }
    plan.nodes.push(Node {
        op,
        inputs,
        key: None,
    });
}

/// Points input `slot` of a node `node` picks among the well-typed ones at
/// an earlier node of a kind its op refuses (`which` picks it), if any.
fn wrong_kind(plan: &mut Plan, node: &Index, slot: &Index, which: &Index) -> bool {
    let kinds = typed_prefix(plan);
    let readers: Vec<usize> = (0..kinds.len())
        .filter(|&i| !plan.nodes[i].inputs.is_empty())
        .collect();
    let Some(node) = pick(node, readers.len()).map(|i| readers[i]) else {
        return false;
    };
    let Node { op, inputs, .. } = &mut plan.nodes[node];
    let slot = pick(slot, inputs.len()).unwrap_or(0);
    let ok = accepted(op, slot);
    let wrong: Vec<usize> = (0..node).filter(|&j| !ok.contains(&kinds[j])).collect();
    pick(which, wrong.len())
        .map(|j| inputs[slot] = wrong[j] as u32)
        .is_some()
}

/// Applies `attack` and says what the plan must now do; `pristine` plans
/// (not twisted) are well-formed until attacked.
pub fn apply_attack(plan: &mut Plan, attack: &Attack, pristine: bool) -> Expect {
    let Attack {
        node,
        other,
        strike,
    } = attack;
    let n = plan.nodes.len();
    let otherwise = if pristine { Expect::Pass } else { Expect::Any };
    match (strike, pick(node, n)) {
        (Strike::ForwardRef(ahead), Some(node)) => {
            rewire(plan, node, other, (node as u32).saturating_add(*ahead));
        }
        (Strike::WrongArity(more), Some(node)) => {
            let Node { op, inputs, .. } = &mut plan.nodes[node];
            let wrong = match (op, *more) {
                (Op::SourceX | Op::SourceY { .. }, _) => 1,
                (Op::TakeRows { .. } | Op::SelectCols { .. } | Op::Solve { .. }, true) => 2,
                (Op::Hstack, _)
                | (Op::TakeRows { .. } | Op::SelectCols { .. } | Op::Solve { .. }, false)
                | (Op::Fit { .. }, false) => 0,
                // The two-input ops, and `fit` (which reads one or two).
                (_, false) => 1,
                (_, true) => 3,
            };
            inputs.resize(wrong, 0);
        }
        (Strike::TooManyInputs, Some(node)) => {
            plan.nodes[node] = Node {
                op: Op::Hstack,
                inputs: vec![0; MAX_INPUTS + 1],
                key: None,
            };
        }
        (Strike::WrongKind(which), _) => {
            if !wrong_kind(plan, node, other, which) {
                return otherwise;
            }
        }
        (Strike::BadOutput(past), _) => plan.outputs.push((n as u32).saturating_add(*past)),
        (Strike::Version(version), _) => plan.version = *version,
        (Strike::NoNodes(outputs), _) => {
            plan.nodes.clear();
            if !outputs {
                plan.outputs.clear();
                return Expect::Pass;
            }
            plan.outputs = vec![0];
        }
        (Strike::UnknownName(target), _) => {
            rename(
                plan,
                node,
                UNKNOWN_NAMES[other.index(UNKNOWN_NAMES.len())],
                *target,
            );
            return Expect::RunPlanError;
        }
        (Strike::BadRows, _) => {
            rename(
                plan,
                node,
                BAD_INDICES[other.index(BAD_INDICES.len())],
                false,
            );
            return Expect::RunDataError;
        }
        (Strike::BadCols(cols), _) => {
            let op = Op::SelectCols { cols: cols.clone() };
            let selects: Vec<usize> = (0..n)
                .filter(|&i| matches!(plan.nodes[i].op, Op::SelectCols { .. }))
                .collect();
            match pick(node, selects.len()) {
                Some(i) => plan.nodes[selects[i]].op = op,
                None => {
                    append(plan, op);
                    plan.outputs.push(plan.nodes.len() as u32 - 1);
                }
            }
            return Expect::Any;
        }
        // Nothing, or a node to attack in an empty plan.
        _ => return otherwise,
    }
    Expect::Reject
}
