//! The plan: a DAG of steps compiled by the Python side, decoded from
//! versioned msgpack. Plan bytes are untrusted: decoding and [`Plan::check`]
//! turn every malformed, truncated, ill-typed or oversized plan into
//! [`RuntimeError::Plan`] before any work starts.

use serde::{Deserialize, Serialize};

use crate::data::Kind;
use crate::data::Weights;
use crate::error::{Result, RuntimeError};
use crate::metrics::Metric;
use crate::ops::Estimator;

/// The plan format this runtime reads.
pub const PLAN_VERSION: u32 = 1;

/// Upper bound on nodes, far above any real batch; keeps hostile plans from
/// reserving unbounded memory for bookkeeping.
pub const MAX_NODES: usize = 4_000_000;

/// Upper bound on the inputs of one node (an `hstack` of many branches).
pub const MAX_INPUTS: usize = 4_096;

/// Upper bound on the length of a node's cache key.
pub const MAX_KEY_LEN: usize = 256;

/// A compiled batch of pipelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Must equal [`PLAN_VERSION`].
    pub version: u32,
    /// Nodes in topological order: a node's inputs are earlier nodes.
    pub nodes: Vec<Node>,
    /// Ids of the nodes whose values are returned, in the order returned.
    pub outputs: Vec<u32>,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// Ids of the nodes it reads, in the order the op expects.
    pub inputs: Vec<u32>,
    /// Content key of the node's value (operation, parameters, input keys,
    /// data fingerprints); nodes with a key are looked up in and stored to
    /// the cache when a run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Node operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// The feature matrix of the dataset (no inputs).
    SourceX,
    /// A named target vector of the dataset (no inputs): classifiers read
    /// class codes, regressors the raw values.
    SourceY { target: String },
    /// Rows of a matrix or vector picked by a named index array (a fold).
    TakeRows { index: String },
    /// Columns of a matrix, by position.
    SelectCols { cols: Vec<u32> },
    /// Matrices side by side (ColumnTransformer output).
    Hstack,
    /// Learns a step from `[X]` or `[X, y]`.
    Fit { estimator: Estimator },
    /// Applies a fitted step `[fitted, X]`.
    Apply,
    /// Least-squares statistics `[X, y]` shared by linear fits.
    Gram { fit_intercept: bool },
    /// A Ridge (alpha > 0) or least-squares (alpha = 0) model from `[gram]`.
    Solve { alpha: f64 },
    /// The `k` nearest training rows of each test row, `[train X, test X]`;
    /// one node serves every KNN variant on the same matrices.
    Neighbors { k: u64 },
    /// A KNN prediction from `[neighbors, train y]` using the first `k`.
    KnnPredict {
        k: u64,
        weights: Weights,
        classifier: bool,
    },
    /// A scorer's value from `[y_true, prediction]`.
    Score { metric: Metric, pos_label: f64 },
}

impl Plan {
    /// Decodes msgpack plan bytes and checks them; see [`Plan::check`].
    pub fn decode(bytes: &[u8]) -> Result<Plan> {
        let plan: Plan = rmp_serde::from_slice(bytes)
            .map_err(|e| RuntimeError::Plan(format!("cannot decode plan bytes: {e}")))?;
        plan.check()?;
        Ok(plan)
    }

    /// Encodes the plan as msgpack (named fields, as the Python side writes).
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a plan always serialises")
    }

    /// Verifies version, size, topological order, arity and input kinds, and
    /// returns the kind of every node.
    pub fn check(&self) -> Result<Vec<Kind>> {
        if self.version != PLAN_VERSION {
            return Err(RuntimeError::Plan(format!(
                "plan version {} is not supported (this runtime reads version {PLAN_VERSION})",
                self.version
            )));
        }
        if self.nodes.len() > MAX_NODES {
            return Err(RuntimeError::Plan(format!(
                "plan has {} nodes, more than the limit of {MAX_NODES}",
                self.nodes.len()
            )));
        }
        let mut kinds: Vec<Kind> = Vec::with_capacity(self.nodes.len());
        for (id, node) in self.nodes.iter().enumerate() {
            let inputs = node_input_kinds(id, node, &kinds)?;
            let kind = node.op.output_kind(&inputs).map_err(|why| {
                RuntimeError::Plan(format!("node {id} ({}): {why}", node.op.name()))
            })?;
            kinds.push(kind);
        }
        for &out in &self.outputs {
            if out as usize >= self.nodes.len() {
                return Err(RuntimeError::Plan(format!(
                    "output {out} names no node (the plan has {} nodes)",
                    self.nodes.len()
                )));
            }
        }
        Ok(kinds)
    }
}

fn node_input_kinds(id: usize, node: &Node, kinds: &[Kind]) -> Result<Vec<Kind>> {
    if node.key.as_ref().is_some_and(|k| k.len() > MAX_KEY_LEN) {
        return Err(RuntimeError::Plan(format!(
            "node {id} has a key longer than {MAX_KEY_LEN} bytes"
        )));
    }
    if node.inputs.len() > MAX_INPUTS {
        return Err(RuntimeError::Plan(format!(
            "node {id} has {} inputs, more than the limit of {MAX_INPUTS}",
            node.inputs.len()
        )));
    }
    node.inputs
        .iter()
        .map(|&input| {
            kinds.get(input as usize).copied().ok_or_else(|| {
                RuntimeError::Plan(format!(
                    "node {id} reads node {input}, which does not come before it"
                ))
            })
        })
        .collect()
}

impl Op {
    /// Short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::SourceX => "source_x",
            Op::SourceY { .. } => "source_y",
            Op::TakeRows { .. } => "take_rows",
            Op::SelectCols { .. } => "select_cols",
            Op::Hstack => "hstack",
            Op::Fit { .. } => "fit",
            Op::Apply => "apply",
            Op::Gram { .. } => "gram",
            Op::Solve { .. } => "solve",
            Op::Neighbors { .. } => "neighbors",
            Op::KnnPredict { .. } => "knn_predict",
            Op::Score { .. } => "score",
        }
    }

    /// The kind this op yields from inputs of the given kinds, or why not.
    ///
    /// `Apply` on a fitted step yields a matrix for transformers and a
    /// prediction for models, which the kinds of its inputs tell apart.
    pub fn output_kind(&self, inputs: &[Kind]) -> std::result::Result<Kind, String> {
        use Kind::*;
        match (self, inputs) {
            (Op::SourceX, []) => Ok(Matrix),
            (Op::SourceY { .. }, []) => Ok(Vector),
            (Op::TakeRows { .. }, [Matrix]) => Ok(Matrix),
            (Op::TakeRows { .. }, [Vector]) => Ok(Vector),
            (Op::SelectCols { .. }, [Matrix]) => Ok(Matrix),
            (Op::Hstack, parts) if !parts.is_empty() && parts.iter().all(|k| *k == Matrix) => {
                Ok(Matrix)
            }
            (Op::Fit { estimator }, [Matrix]) if !estimator.needs_target() => {
                Ok(fitted_kind(estimator))
            }
            (Op::Fit { estimator }, [Matrix, Vector]) => Ok(fitted_kind(estimator)),
            (Op::Apply, [Transformer, Matrix]) => Ok(Matrix),
            (Op::Apply, [Model, Matrix]) => Ok(Prediction),
            (Op::Gram { .. }, [Matrix, Vector]) => Ok(Gram),
            (Op::Solve { .. }, [Gram]) => Ok(Model),
            (Op::Neighbors { .. }, [Matrix, Matrix]) => Ok(Neighbors),
            (Op::KnnPredict { .. }, [Neighbors, Vector]) => Ok(Prediction),
            (Op::Score { .. }, [Vector, Prediction]) => Ok(Scalar),
            (_, got) => Err(format!("inputs of kinds {got:?} do not fit this op")),
        }
    }
}

fn fitted_kind(estimator: &Estimator) -> Kind {
    if estimator.is_model() {
        Kind::Model
    } else {
        Kind::Transformer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Estimator;

    fn node(op: Op, inputs: &[u32]) -> Node {
        Node {
            op,
            inputs: inputs.to_vec(),
            key: None,
        }
    }

    pub(crate) fn ridge_plan() -> Plan {
        Plan {
            version: PLAN_VERSION,
            nodes: vec![
                node(Op::SourceX, &[]),
                node(Op::SourceY { target: "y".into() }, &[]),
                node(
                    Op::TakeRows {
                        index: "train0".into(),
                    },
                    &[0],
                ),
                node(
                    Op::TakeRows {
                        index: "train0".into(),
                    },
                    &[1],
                ),
                node(
                    Op::Fit {
                        estimator: Estimator::Ridge {
                            alpha: 1.0,
                            fit_intercept: true,
                        },
                    },
                    &[2, 3],
                ),
                node(Op::Apply, &[4, 2]),
                node(
                    Op::Score {
                        metric: Metric::R2,
                        pos_label: 1.0,
                    },
                    &[3, 5],
                ),
            ],
            outputs: vec![6],
        }
    }

    #[test]
    fn round_trips_and_types() {
        let plan = ridge_plan();
        let decoded = Plan::decode(&plan.encode()).unwrap();
        assert_eq!(decoded, plan);
        let kinds = decoded.check().unwrap();
        assert_eq!(kinds[4], Kind::Model);
        assert_eq!(kinds[5], Kind::Prediction);
        assert_eq!(kinds[6], Kind::Scalar);
    }

    #[test]
    fn rejects_other_versions() {
        let mut plan = ridge_plan();
        plan.version = 7;
        let err = Plan::decode(&plan.encode()).unwrap_err();
        assert!(matches!(err, RuntimeError::Plan(m) if m.contains("version 7")));
    }

    #[test]
    fn rejects_forward_references_and_bad_outputs() {
        let mut plan = ridge_plan();
        plan.nodes[2].inputs = vec![5];
        assert!(
            matches!(plan.check(), Err(RuntimeError::Plan(m)) if m.contains("does not come before"))
        );
        let mut plan = ridge_plan();
        plan.outputs = vec![99];
        assert!(matches!(plan.check(), Err(RuntimeError::Plan(m)) if m.contains("names no node")));
    }

    #[test]
    fn rejects_ill_typed_nodes() {
        let mut plan = ridge_plan();
        plan.nodes[6].inputs = vec![5, 3];
        assert!(matches!(plan.check(), Err(RuntimeError::Plan(m)) if m.contains("score")));
        let mut plan = ridge_plan();
        plan.nodes[4].inputs = vec![2];
        assert!(plan.check().is_err());
    }

    #[test]
    fn rejects_truncated_bytes() {
        let bytes = ridge_plan().encode();
        for cut in 0..bytes.len() {
            assert!(matches!(
                Plan::decode(&bytes[..cut]),
                Err(RuntimeError::Plan(_))
            ));
        }
    }
}
