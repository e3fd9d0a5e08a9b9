//! The datasets plans run on, and the names they supply.

use std::sync::OnceLock;

use _runtime::exec::Dataset;
use faer::Mat;

pub const N_ROWS: usize = 12;
pub const TARGETS: [&str; 4] = ["y", "yc", "yr", "yw"];
/// Index names valid plans may use (all rows in range).
pub const INDICES: [&str; 7] = ["tr", "te", "all", "empty", "dup", "one", "rev"];
/// Index names holding rows outside `0..N_ROWS`.
pub const BAD_INDICES: [&str; 2] = ["oob", "neg"];
/// The fixture without NaN or extreme values, where models get to predict
/// and scorers to score.
pub const CLEAN: usize = 1;

pub struct Fixture {
    x: Mat<f64>,
    targets: Vec<(&'static str, Vec<f64>)>,
    indices: Vec<(&'static str, Vec<i64>)>,
}

impl Fixture {
    pub fn dataset(&self) -> Dataset<'_> {
        Dataset {
            x: self.x.as_ref(),
            targets: self
                .targets
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_slice()))
                .collect(),
            indices: self
                .indices
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_slice()))
                .collect(),
        }
    }
}

/// Three `N_ROWS x 3` datasets sharing targets and indices: one with a NaN
/// (the usual case), the [`CLEAN`] one, one with extreme values.
pub fn fixtures() -> &'static [Fixture; 3] {
    static FIXTURES: OnceLock<[Fixture; 3]> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let base = |i: usize, j: usize| ((i * 5 + j * 3) % 7) as f64 * 0.5 - 1.0 + j as f64;
        let mut with_nan = Mat::from_fn(N_ROWS, 3, base);
        with_nan[(4, 1)] = f64::NAN;
        let clean = Mat::from_fn(N_ROWS, 3, |i, j| base(i, j) + 0.01 * (i * i) as f64);
        let extreme = Mat::from_fn(N_ROWS, 3, |i, j| match (j, i % 4) {
            (0, 0) => 1e300,
            (0, 1) => -1e300,
            (0, 2) => 1e-300,
            (0, _) => f64::MAX,
            (1, _) if i == 7 => f64::INFINITY,
            (1, _) => 2.0,
            (_, 0) => 5e-324,
            (_, 1) => -0.0,
            (_, _) => -(i as f64),
        });
        let target = |f: fn(usize) -> f64| (0..N_ROWS).map(f).collect::<Vec<f64>>();
        let targets = vec![
            ("y", target(|i| ((i * 7 + 3) % 5 % 2) as f64)),
            ("yc", target(|i| (i % 3) as f64)),
            ("yr", target(|i| (i as f64 * 1.3).sin() * 4.0)),
            (
                "yw",
                target(|i| match i {
                    2 => f64::NAN,
                    5 => f64::INFINITY,
                    9 => 1e308,
                    _ => i as f64 - 0.5,
                }),
            ),
        ];
        let indices = vec![
            ("tr", (0..8).collect()),
            ("te", (8..12).collect()),
            ("all", (0..12).collect()),
            ("empty", vec![]),
            ("dup", vec![3; 5]),
            ("one", vec![4]),
            ("rev", (0..12).rev().collect()),
            ("oob", vec![0, 12]),
            ("neg", vec![-1, 2]),
        ];
        [with_nan, clean, extreme].map(|x| Fixture {
            x,
            targets: targets.clone(),
            indices: indices.clone(),
        })
    })
}
