//! Plans this fuzzer found to break the runtime, now refused cleanly: small,
//! well-formed plans whose nodes must fail with a data error.

use _runtime::data::MAX_COLUMNS;
use _runtime::error::RuntimeError;
use _runtime::exec::{self, Failure, Outcome};
use _runtime::ops::Estimator;
use _runtime::plan::{Node, Op, Plan, PLAN_VERSION};

use crate::fixtures::{fixtures, CLEAN};
use crate::guard::{Case, CANCEL};

fn node(op: Op, inputs: Vec<u32>) -> Node {
    Node {
        op,
        inputs,
        key: None,
    }
}

fn plan_of(nodes: Vec<Node>, outputs: Vec<u32>) -> Plan {
    Plan {
        version: PLAN_VERSION,
        nodes,
        outputs,
    }
}

/// Runs `plan` as written (so intermediates are freed once consumed) on the
/// clean fixture as one guarded case, and returns its outputs.
fn run(plan: &Plan) -> Vec<Outcome> {
    plan.check().expect("the plan is well-formed");
    let case = Case::start(|| format!("{plan:?}"));
    let pool = exec::pool(Some(1)).expect("a one-thread pool");
    let result = exec::run(plan, &fixtures()[CLEAN].dataset(), &pool, &CANCEL);
    // First: a memory blow-up also cancels the run.
    case.finish();
    result.expect("the plan runs").outputs
}

/// Asserts that `outcome` is a data error raised by one of `nodes`, whose
/// message contains `needle`.
fn assert_data_error(outcome: &Outcome, nodes: &[u32], needle: &str) {
    match outcome {
        Err(Failure {
            node,
            error: RuntimeError::Data(message),
        }) if nodes.contains(node) && message.contains(needle) => {}
        other => panic!("expected a data error of node {nodes:?} saying {needle:?}, got {other:?}"),
    }
}

/// `take_rows` on values that already hold a subset of the rows: the index
/// names rows of X, which the 4-row subset does not have (`exec.rs` used to
/// gather without a bounds check and panic).
#[test]
fn take_rows_of_a_row_subset_fails_cleanly() {
    let take = |index: &str, input: u32| {
        let index = index.into();
        node(Op::TakeRows { index }, vec![input])
    };
    let target = "y".into();
    let nodes = vec![
        node(Op::SourceX, vec![]),
        node(Op::SourceY { target }, vec![]),
        take("te", 0),
        take("tr", 2),
        take("te", 1),
        take("tr", 4),
    ];
    let outputs = run(&plan_of(nodes, vec![3, 5]));
    assert_data_error(&outputs[0], &[3], "but its input has 4 rows");
    assert_data_error(&outputs[1], &[5], "but its input has 4 rows");
}

/// `hstack(prev, prev)` forty times: a 2 KB plan asking for a matrix of
/// 3 * 2^40 columns. The first level wider than `MAX_COLUMNS` must fail
/// before allocating, with the levels below it fitting in the memory limit.
#[test]
fn doubling_hstack_chain_stays_bounded() {
    let mut nodes = vec![node(Op::SourceX, vec![])];
    nodes.extend((0..40).map(|i| node(Op::Hstack, vec![i, i])));
    let outputs = run(&plan_of(nodes, vec![40]));
    // Node i holds the fixture's 3 columns doubled i times.
    let too_wide = (0..40).find(|&i| 3 << i > MAX_COLUMNS).unwrap();
    let limit = format!("more than the limit of {MAX_COLUMNS}");
    assert_data_error(&outputs[0], &[too_wide], &limit);
}

/// `PolynomialFeatures(degree=2)` of 5,000 selected columns: a 5 KB plan
/// asking for 12.5M output columns (the width grows quadratically with the
/// plan, and squares again with every further expansion). Fitting or
/// applying must refuse it before allocating anything of that size.
#[test]
fn polynomial_features_of_many_columns_stay_bounded() {
    let estimator = Estimator::PolynomialFeatures {
        degree: 2,
        interaction_only: false,
        include_bias: true,
    };
    let cols = (0..5_000).map(|c| c % 3).collect();
    let plan = plan_of(
        vec![
            node(Op::SourceX, vec![]),
            node(Op::SelectCols { cols }, vec![0]),
            node(Op::Fit { estimator }, vec![1]),
            node(Op::Apply, vec![2, 1]),
        ],
        vec![3],
    );
    assert!(plan.encode().len() < 6_000, "{}", plan.encode().len());
    let outputs = run(&plan);
    let limit = format!("more than the limit of {MAX_COLUMNS}");
    assert_data_error(&outputs[0], &[2, 3], &limit);
}
