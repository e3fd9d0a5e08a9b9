//! Turns a [`PlanSpec`] into a plan that passes `Plan::check`: each step
//! picks inputs of the right kinds (preferring ones whose rows and widths fit
//! together) and is dropped when none exist or its output grows too wide.

use _runtime::data::Kind;
use _runtime::ops::impute::Strategy as ImputeStrategy;
use _runtime::ops::Estimator;
use _runtime::plan::{Node, Op, Plan, PLAN_VERSION};

use crate::fixtures::N_ROWS;
use crate::strategies::{PlanSpec, Route, Step};

/// Widest matrix a generated plan may build, so that random plans stay
/// small (width blow-ups have their own regression tests).
const MAX_WIDTH: u64 = 64;

/// What the builder knows about a node.
#[derive(Debug, Clone)]
struct Info {
    kind: Kind,
    /// Tag of the row set (which index chain picked the rows, 0 for whole
    /// dataset values); the test rows of a neighbour search.
    rows: u64,
    /// Columns of a matrix; the training columns of what was fitted on one.
    width: u64,
    /// Rows of the first input: the training rows of a neighbour search.
    fit_rows: u64,
    /// What a fitted node fitted, which sets the width of its output.
    estimator: Option<Estimator>,
}

#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    info: Vec<Info>,
    /// Training X, test X, training y, test y.
    split: [u32; 4],
}

fn row_tag(parent: u64, index: &str) -> u64 {
    let mut h = parent ^ 0xcbf2_9ce4_8422_2325;
    for b in index.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

/// Upper bound on the columns a fitted transformer outputs for `p` inputs.
fn transformed_width(estimator: &Estimator, p: u64) -> u64 {
    match estimator {
        Estimator::OneHotEncoder => p.saturating_mul(N_ROWS as u64 + 1),
        Estimator::PolynomialFeatures { degree, .. } if *degree >= 2 => {
            1 + p + p.saturating_mul(p + 1) / 2
        }
        Estimator::PolynomialFeatures { .. } => 1 + p,
        Estimator::Pca { n_components, .. } => p.min(*n_components),
        _ => p,
    }
}

/// A node among `ids`, recent ones first for small `pick`s.
fn choose(ids: &[u32], pick: u8) -> Option<u32> {
    (!ids.is_empty()).then(|| ids[ids.len() - 1 - pick as usize % ids.len()])
}

/// Chooses among `preferred` when `smart` and there are any, else among `all`.
fn choose_smart(smart: bool, preferred: &[u32], all: &[u32], pick: u8) -> Option<u32> {
    choose(
        if smart && !preferred.is_empty() {
            preferred
        } else {
            all
        },
        pick,
    )
}

impl Builder {
    /// Appends `op` reading `inputs` if it type-checks and stays small.
    fn push(&mut self, op: Op, inputs: Vec<u32>) -> Option<u32> {
        let ins: Vec<&Info> = inputs.iter().map(|&i| &self.info[i as usize]).collect();
        let kinds: Vec<Kind> = ins.iter().map(|i| i.kind).collect();
        let kind = op.output_kind(&kinds).ok()?;
        let (rows, width) = ins.first().map_or((0, 0), |i| (i.rows, i.width));
        let mut info = Info {
            kind,
            rows,
            width,
            fit_rows: rows,
            estimator: None,
        };
        match &op {
            Op::SourceX => info.width = 3,
            Op::TakeRows { index } => info.rows = row_tag(rows, index),
            Op::SelectCols { cols } => info.width = cols.len() as u64,
            Op::Hstack => info.width = ins.iter().map(|i| i.width).sum(),
            Op::Fit { estimator } => info.estimator = Some(estimator.clone()),
            Op::Neighbors { .. } => info.rows = ins[1].rows,
            Op::Apply => {
                info.rows = ins[1].rows;
                info.width = match &ins[0].estimator {
                    Some(estimator) if kind == Kind::Matrix => {
                        transformed_width(estimator, ins[1].width)
                    }
                    _ => 0,
                };
            }
            _ => {}
        }
        if info.width > MAX_WIDTH {
            return None;
        }
        self.nodes.push(Node {
            op,
            inputs,
            key: None,
        });
        self.info.push(info);
        Some(self.nodes.len() as u32 - 1)
    }

    fn ids(&self, keep: impl Fn(&Info) -> bool) -> Vec<u32> {
        (0..self.info.len() as u32)
            .filter(|&i| keep(&self.info[i as usize]))
            .collect()
    }

    /// Appends a pipeline; a step that does not type-check or grows too
    /// wide ends it early.
    fn pipeline(
        &mut self,
        split: Option<(&str, &str, &str)>,
        transformers: &[Estimator],
        model: &Estimator,
        route: &Route,
        score: &Op,
    ) -> Option<u32> {
        let [mut tr, mut te, ytr, yte] = match split {
            None => self.split,
            Some((train, test, target)) => {
                let target = target.into();
                let y = self.push(Op::SourceY { target }, vec![])?;
                let mut take = |index: &str, input: u32| {
                    let index = index.into();
                    self.push(Op::TakeRows { index }, vec![input])
                };
                [
                    take(train, 0)?,
                    take(test, 0)?,
                    take(train, y)?,
                    take(test, y)?,
                ]
            }
        };
        for estimator in transformers {
            let inputs = if estimator.needs_target() {
                vec![tr, ytr]
            } else {
                vec![tr]
            };
            let estimator = estimator.clone();
            let fitted = self.push(Op::Fit { estimator }, inputs)?;
            tr = self.push(Op::Apply, vec![fitted, tr])?;
            te = self.push(Op::Apply, vec![fitted, te])?;
        }
        let prediction = match route {
            Route::Fit => {
                let estimator = model.clone();
                let model = self.push(Op::Fit { estimator }, vec![tr, ytr])?;
                self.push(Op::Apply, vec![model, te])?
            }
            &Route::Gram {
                fit_intercept,
                alpha,
            } => {
                let gram = self.push(Op::Gram { fit_intercept }, vec![tr, ytr])?;
                let model = self.push(Op::Solve { alpha }, vec![gram])?;
                self.push(Op::Apply, vec![model, te])?
            }
            &Route::Neighbors { k, ref predict } => {
                let found = self.push(Op::Neighbors { k }, vec![tr, te])?;
                self.push(predict.clone(), vec![found, ytr])?
            }
        };
        self.push(score.clone(), vec![yte, prediction])
    }

    /// Inputs for `op`, chosen by `picks` among the nodes of fitting kinds.
    fn inputs(&self, op: &Op, [p0, p1, p2, p3]: [u8; 4], smart: bool) -> Option<Vec<u32>> {
        let is = |k: Kind| move |i: &Info| i.kind == k;
        let matrices = self.ids(is(Kind::Matrix));
        let vectors = self.ids(is(Kind::Vector));
        let with_rows = |rows: u64| {
            let same = self.ids(|i| i.kind == Kind::Vector && i.rows == rows);
            choose_smart(smart, &same, &vectors, p1)
        };
        let with_width = |width: u64, pick: u8| {
            let same = self.ids(|i| i.kind == Kind::Matrix && i.width == width);
            choose_smart(smart, &same, &matrices, pick)
        };
        let rows_of = |id: u32| self.info[id as usize].rows;
        match op {
            Op::SourceX | Op::SourceY { .. } => Some(vec![]),
            Op::TakeRows { .. } => {
                // Real plans pick rows of whole-dataset values.
                let data = |i: &Info| matches!(i.kind, Kind::Matrix | Kind::Vector);
                let whole = self.ids(|i| data(i) && i.rows == 0);
                choose_smart(smart, &whole, &self.ids(data), p0).map(|a| vec![a])
            }
            Op::SelectCols { .. } => choose(&matrices, p0).map(|a| vec![a]),
            Op::Hstack => choose(&matrices, p0).map(|first| {
                let same = self.ids(|i| i.kind == Kind::Matrix && i.rows == rows_of(first));
                let mut inputs = vec![first];
                for p in [p1, p2].into_iter().take(p3 as usize % 3) {
                    inputs.extend(choose_smart(smart, &same, &matrices, p));
                }
                inputs
            }),
            Op::Fit { estimator } if !estimator.needs_target() && p3 % 4 != 0 => {
                choose(&matrices, p0).map(|m| vec![m])
            }
            Op::Fit { .. } | Op::Gram { .. } => {
                choose(&matrices, p0).and_then(|m| with_rows(rows_of(m)).map(|v| vec![m, v]))
            }
            Op::Apply => {
                let fitted = self.ids(|i| matches!(i.kind, Kind::Transformer | Kind::Model));
                choose(&fitted, p0)
                    .and_then(|f| with_width(self.info[f as usize].width, p1).map(|m| vec![f, m]))
            }
            Op::Solve { .. } => choose(&self.ids(is(Kind::Gram)), p0).map(|g| vec![g]),
            Op::Neighbors { .. } => choose(&matrices, p0).and_then(|train| {
                with_width(self.info[train as usize].width, p2).map(|test| vec![train, test])
            }),
            Op::KnnPredict { .. } => choose(&self.ids(is(Kind::Neighbors)), p0)
                .and_then(|n| with_rows(self.info[n as usize].fit_rows).map(|y| vec![n, y])),
            Op::Score { .. } => choose(&self.ids(is(Kind::Prediction)), p0)
                .and_then(|p| with_rows(rows_of(p)).map(|v| vec![v, p])),
        }
    }

    fn add(&mut self, step: &Step) {
        match step {
            Step::Op { op, picks, smart } => {
                if let Some(inputs) = self.inputs(op, *picks, *smart) {
                    self.push(op.clone(), inputs);
                }
            }
            Step::Pipeline {
                split,
                transformers,
                model,
                route,
                score,
            } => {
                self.pipeline(*split, transformers, model, route, score);
            }
        }
    }
}

/// Builds the well-formed plan `spec` describes; every score is an output.
pub fn build(spec: &PlanSpec) -> Plan {
    let mut b = Builder::default();
    let take = |index: &str| Op::TakeRows {
        index: index.into(),
    };
    let target = spec.target.into();
    b.push(Op::SourceX, vec![]);
    b.push(Op::SourceY { target }, vec![]);
    b.push(take("tr"), vec![0]);
    b.push(take("tr"), vec![1]);
    b.push(take("te"), vec![0]);
    b.push(take("te"), vec![1]);
    b.split = [2, 4, 3, 5];
    if spec.impute {
        let estimator = Estimator::SimpleImputer {
            strategy: ImputeStrategy::Mean,
            fill_value: 0.0,
        };
        b.push(Op::Fit { estimator }, vec![2]);
        b.push(Op::Apply, vec![6, 2]);
        b.push(Op::Apply, vec![6, 4]);
        b.split = [7, 8, 3, 5];
    }
    for step in &spec.steps {
        b.add(step);
    }
    let n = b.nodes.len() as u32;
    let mut outputs = b.ids(|i| i.kind == Kind::Scalar);
    outputs.extend(spec.extra_outputs.iter().map(|&e| u32::from(e) % n));
    let plan = Plan {
        version: PLAN_VERSION,
        nodes: b.nodes,
        outputs,
    };
    debug_assert!(plan.check().is_ok());
    plan
}
