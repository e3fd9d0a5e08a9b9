//! What the runtime may answer: runs a plan every way it can be seen and
//! checks each answer against the contract.

use _runtime::error::RuntimeError;
use _runtime::exec;
use _runtime::plan::Plan;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::fixtures::fixtures;
use crate::guard::{Case, CANCEL};
use crate::msgpack::hex;

/// What a hostile plan must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Well-formed: `check` accepts it and `run` returns a report.
    Pass,
    /// Structurally broken: `check` refuses it.
    Reject,
    /// Names an unknown target or index: `run` refuses it as a plan error.
    RunPlanError,
    /// Names an index with rows out of range: `run` refuses it as bad data.
    RunDataError,
    /// Anything, as long as nothing panics, hangs or blows up.
    Any,
}

fn is_plan_error(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Plan(_))
}

/// Checks `plan` the ways the runtime can see it (in memory, re-encoded and
/// decoded, run on `fixture`) and that every answer is one `expect` allows.
pub fn check_and_run(
    case: &Case,
    plan: &Plan,
    fixture: usize,
    expect: Expect,
) -> Result<(), TestCaseError> {
    let checked = plan.check();
    let bytes = plan.encode();
    match (&checked, Plan::decode(&bytes)) {
        (Ok(_), Ok(decoded)) => prop_assert_eq!(decoded.encode(), bytes, "re-encoding differs"),
        (Err(RuntimeError::Plan(a)), Err(RuntimeError::Plan(b))) => prop_assert_eq!(a, &b),
        (c, d) => prop_assert!(false, "check gave {:?} but decode gave {:?}", c, d),
    }
    if let Err(e) = &checked {
        prop_assert!(
            is_plan_error(e),
            "check failed with a non-plan error: {e:?}"
        );
        prop_assert!(
            expect != Expect::Pass,
            "check refused a well-formed plan: {e}\n{plan:?}"
        );
    } else {
        prop_assert!(
            expect != Expect::Reject,
            "check accepted a broken plan: {plan:?}"
        );
    }

    // Every node is computed whatever the outputs are; making them all
    // outputs lets the run show the failure of each.
    let mut observed = plan.clone();
    observed.outputs.extend(0..plan.nodes.len() as u32);
    let pool = exec::pool(Some(1)).expect("a one-thread pool");
    let result = exec::run(&observed, &fixtures()[fixture].dataset(), &pool, &CANCEL);
    // First: a blow-up also cancels the run, which is no answer to judge.
    case.memory()?;
    let (report, kinds) = match (result, checked) {
        (Err(e), Err(_)) => {
            prop_assert!(is_plan_error(&e), "run of an ill-formed plan gave {e:?}");
            return Ok(());
        }
        (Ok(_), Err(_)) => {
            return Err(TestCaseError::fail(format!(
                "run accepted a plan that check refuses: {plan:?}"
            )));
        }
        (Err(e), Ok(_)) => {
            match expect {
                Expect::RunPlanError => prop_assert!(is_plan_error(&e), "{e:?}"),
                Expect::RunDataError => prop_assert!(matches!(e, RuntimeError::Data(_)), "{e:?}"),
                Expect::Pass => prop_assert!(false, "run refused a well-formed plan: {e:?}"),
                Expect::Any | Expect::Reject => prop_assert!(
                    matches!(e, RuntimeError::Plan(_) | RuntimeError::Data(_)),
                    "run failed with {e:?}"
                ),
            }
            return Ok(());
        }
        (Ok(report), Ok(kinds)) => (report, kinds),
    };
    prop_assert!(
        !matches!(expect, Expect::RunPlanError | Expect::RunDataError),
        "run accepted a plan naming a bad target or index: {plan:?}"
    );
    prop_assert_eq!(report.outputs.len(), observed.outputs.len());
    prop_assert!(report.executed <= plan.nodes.len());
    for (outcome, &id) in report.outputs.iter().zip(&observed.outputs) {
        match outcome {
            Ok(value) => prop_assert_eq!(value.kind(), kinds[id as usize], "kind of output {}", id),
            Err(failure) => {
                let node = observed.nodes.get(failure.node as usize);
                prop_assert!(node.is_some(), "failure names no node: {failure:?}");
                let message = failure.error.to_string();
                prop_assert!(
                    !message.contains("internal error"),
                    "a kernel panicked: {message}\nin node {} = {node:?}\n\
                     fixture {fixture}, plan:\n{plan:#?}",
                    failure.node
                );
                prop_assert!(
                    !matches!(failure.error, RuntimeError::Interrupted),
                    "output {id} interrupted"
                );
            }
        }
    }
    Ok(())
}

/// Decodes untrusted bytes; whatever decodes is also run.
pub fn decode_untrusted(case: &Case, bytes: &[u8], fixture: usize) -> Result<(), TestCaseError> {
    match Plan::decode(bytes) {
        Ok(plan) => check_and_run(case, &plan, fixture, Expect::Any),
        Err(RuntimeError::Plan(_)) => case.memory(),
        Err(e) => Err(TestCaseError::fail(format!(
            "decode failed with a non-plan error {e:?}: {}",
            hex(bytes)
        ))),
    }
}
