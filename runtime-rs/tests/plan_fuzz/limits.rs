//! Bytes built to exhaust the decoder: values nested past any stack, and
//! length headers claiming gigabytes.

use _runtime::data::Weights;
use _runtime::error::RuntimeError;
use _runtime::metrics::Metric;
use _runtime::ops::Estimator;
use _runtime::plan::{Op, Plan};

use crate::builder::build;
use crate::fixtures::CLEAN;
use crate::guard::Case;
use crate::msgpack::{encode, hex, walk, Huge, Token};
use crate::mutations::encoded;
use crate::strategies::{PlanSpec, Route, Step};

/// A named-field plan with one node whose op map holds `op_fields` (keys and
/// values, encoded).
fn plan_with_op(op_fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = encode(&[
        Token::Map(3),
        Token::str("version"),
        Token::UInt(1),
        Token::str("nodes"),
        Token::Array(1),
        Token::Map(2),
        Token::str("op"),
        Token::Map(op_fields.len() as u8 / 2),
    ]);
    out.extend(op_fields.concat());
    out.extend(encode(&[
        Token::str("inputs"),
        Token::Array(0),
        Token::str("outputs"),
        Token::Array(0),
    ]));
    out
}

#[test]
fn deeply_nested_values_are_refused_without_stack_overflow() {
    const DEPTH: usize = 100_000;
    let nested = |open: &[u8]| [open.repeat(DEPTH), vec![0xc0]].concat();
    let arrays = nested(&[0x91]);
    let arrays32 = nested(&[0xdd, 0, 0, 0, 1]);
    let maps = nested(&[0x81, 0xc0]);
    let w = |s: &str| encode(&[Token::str(s)]);
    let in_nodes = [
        encode(&[Token::Map(3), Token::str("version"), Token::UInt(1)]),
        w("nodes"),
        arrays.clone(),
    ]
    .concat();
    let estimator = [
        encode(&[
            Token::Map(2),
            Token::str("name"),
            Token::str("max_abs_scaler"),
        ]),
        w("deep"),
        maps.clone(),
    ]
    .concat();
    // Fields of internally tagged enums (ops, estimators) are buffered as
    // untyped content, so that only rmp-serde's depth limit stops the
    // recursion: the error must name it.
    let buffered = [
        (
            "op field after the tag",
            [w("kind"), w("hstack"), w("deep"), arrays.clone()],
        ),
        (
            "op field before the tag",
            [w("deep"), maps.clone(), w("kind"), w("hstack")],
        ),
        (
            "op field of array32s",
            [w("kind"), w("apply"), w("deep"), arrays32.clone()],
        ),
        (
            "estimator field",
            [w("kind"), w("fit"), w("estimator"), estimator],
        ),
    ];
    let direct = [
        ("top-level arrays", arrays.clone()),
        ("top-level array32s", arrays32),
        ("top-level maps", maps),
        ("plan nodes", in_nodes),
        ("op tag", plan_with_op(&[w("kind"), arrays])),
    ];
    let cases = direct
        .map(|(what, bytes)| (what, bytes, false))
        .into_iter()
        .chain(buffered.map(|(what, fields)| (what, plan_with_op(&fields), true)));
    for (what, bytes, buffered) in cases {
        let case = Case::start(|| what.to_string());
        // A fixed, modest stack: at rmp-serde's depth limit (1024) decoding
        // needs between 256 and 512 KiB in the dev profile.
        let got = std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn_scoped(s, || Plan::decode(&bytes))
                .expect("a decoding thread")
                .join()
                .expect("decoding does not panic")
        });
        match got {
            Err(RuntimeError::Plan(m)) => {
                assert!(!buffered || m.contains("depth limit"), "{what}: {m}");
            }
            other => panic!("{what}: expected a plan error, got {other:?}"),
        }
        case.finish();
    }
}

/// Every value of a real plan, given each kind of huge length header in
/// place of its own or before it.
#[test]
fn huge_length_headers_are_refused_cheaply() {
    let score = Op::Score {
        metric: Metric::R2,
        pos_label: 1.0,
    };
    let knn = Estimator::KNeighbors {
        n_neighbors: 3,
        weights: Weights::Distance,
        classifier: false,
    };
    let predict = Op::KnnPredict {
        k: 2,
        weights: Weights::Uniform,
        classifier: true,
    };
    let pipeline = |route| Step::Pipeline {
        split: None,
        transformers: vec![Estimator::StandardScaler {
            with_mean: true,
            with_std: true,
        }],
        model: knn.clone(),
        route,
        score: score.clone(),
    };
    let spec = PlanSpec {
        fixture: CLEAN,
        target: "yr",
        impute: true,
        steps: vec![
            pipeline(Route::Fit),
            pipeline(Route::Neighbors { k: 3, predict }),
            Step::Op {
                op: Op::SelectCols { cols: vec![0, 2] },
                picks: [0; 4],
                smart: true,
            },
        ],
        extra_outputs: vec![],
    };
    let plan = build(&spec);
    for compact in [false, true] {
        let bytes = encoded(&plan, compact);
        for (i, &at) in walk(&bytes).iter().enumerate() {
            for marker in Huge::MARKERS {
                for count in [u32::MAX, 1 << 31, 0x0001_0000] {
                    for replace in [true, false] {
                        let huge = Huge { marker, count };
                        let mut mutated = bytes.clone();
                        huge.splice(&mut mutated, at, replace);
                        let case = Case::start(|| hex(&mutated));
                        let got = Plan::decode(&mutated);
                        assert!(
                            matches!(got, Err(RuntimeError::Plan(_))),
                            "value {i} given {huge:?} (replace: {replace}): {got:?}"
                        );
                        case.finish();
                    }
                }
            }
        }
    }
}
