//! Plan bytes are untrusted input: this test fuzzes `Plan::decode`,
//! `Plan::check` and `exec::run` with random, mutated, truncated and
//! semantically hostile plans.
//!
//! What is checked, for every input (see `oracle`):
//! - decoding returns `Ok` or `Err(RuntimeError::Plan)`, never panics;
//! - structurally broken plans are refused by `Plan::check` with
//!   `RuntimeError::Plan`;
//! - plans that pass `check` run to `Ok(report)` or `Err(Plan | Data)`; the
//!   outcomes have the kinds `check` promised, and no node failure is an
//!   "internal error" (the executor's report of a panicking kernel);
//! - no case grows the heap by more than `guard::SOFT_LIMIT` or runs longer
//!   than a minute (`guard`).
//!
//! `PLAN_FUZZ_SCALE=N` multiplies the number of generated cases. The support
//! modules live in `plan_fuzz/`, so that Cargo builds one test binary.

#[path = "plan_fuzz/attacks.rs"]
mod attacks;
#[path = "plan_fuzz/builder.rs"]
mod builder;
#[path = "plan_fuzz/fixtures.rs"]
mod fixtures;
#[path = "plan_fuzz/guard.rs"]
mod guard;
#[path = "plan_fuzz/limits.rs"]
mod limits;
#[path = "plan_fuzz/msgpack.rs"]
mod msgpack;
#[path = "plan_fuzz/mutations.rs"]
mod mutations;
#[path = "plan_fuzz/oracle.rs"]
mod oracle;
#[path = "plan_fuzz/regressions.rs"]
mod regressions;
#[path = "plan_fuzz/strategies.rs"]
mod strategies;

use _runtime::error::RuntimeError;
use _runtime::plan::Plan;
use proptest::collection::vec;
use proptest::prelude::*;

use attacks::{apply_attack, apply_twist, attack, twist};
use builder::build;
use guard::{config, Case};
use msgpack::hex;
use mutations::{encoded, mutate, mutation, random_bytes};
use oracle::{check_and_run, decode_untrusted};
use strategies::plan_spec;

proptest! {
    #![proptest_config(config(5_000))]

    /// Arbitrary bytes, msgpack-shaped token soup and valid prefixes with
    /// garbage tails decode to `Ok` or `Err(Plan)`; whatever decodes runs.
    #[test]
    fn random_bytes_never_panic(bytes in random_bytes(), fixture in 0..3usize) {
        let case = Case::start(|| hex(&bytes));
        decode_untrusted(&case, &bytes, fixture)?;
    }
}

proptest! {
    #![proptest_config(config(6_000))]

    /// Valid plans, encoded (named or compact), then mutated: bit flips,
    /// cuts, splices, garbage, huge length headers, swapped values.
    #[test]
    fn mutated_plans_never_panic(
        spec in plan_spec(),
        compact in any::<bool>(),
        mutations in vec(mutation(), 1..5),
    ) {
        let mut bytes = encoded(&build(&spec), compact);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        let case = Case::start(|| hex(&bytes));
        decode_untrusted(&case, &bytes, spec.fixture)?;
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Every proper prefix of a valid plan is refused; the whole plan
    /// decodes to itself.
    #[test]
    fn every_prefix_is_refused(spec in plan_spec(), compact in any::<bool>()) {
        let plan = build(&spec);
        let bytes = encoded(&plan, compact);
        let case = Case::start(|| format!("{plan:?}"));
        // Encodings, not plans: NaN parameters make equal plans unequal.
        let decoded = Plan::decode(&bytes).map(|p| p.encode());
        prop_assert_eq!(decoded, Ok(plan.encode()));
        for cut in 0..bytes.len() {
            let got = Plan::decode(&bytes[..cut]);
            prop_assert!(matches!(got, Err(RuntimeError::Plan(_))), "prefix {}: {:?}", cut, got);
        }
        case.memory()?;
    }
}

proptest! {
    #![proptest_config(config(8_000))]

    /// Well-formed plans, rewired at random and then attacked: structural
    /// damage is refused by `check`, unknown names by `run`, and whatever
    /// runs ends in a report (per-node failures allowed) without a kernel
    /// panic.
    #[test]
    fn hostile_plans_are_refused_or_run_safely(
        spec in plan_spec(),
        twists in prop_oneof![3 => Just(vec![]), 1 => vec(twist(), 1..3)],
        attack in attack(),
    ) {
        let mut plan = build(&spec);
        twists.iter().for_each(|t| apply_twist(&mut plan, t));
        let expect = apply_attack(&mut plan, &attack, twists.is_empty());
        let case = Case::start(|| format!("fixture {}: {plan:?}", spec.fixture));
        check_and_run(&case, &plan, spec.fixture, expect)?;
    }
}
