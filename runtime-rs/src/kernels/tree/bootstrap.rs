//! The random draws a scikit-learn forest makes before growing its trees:
//! one seed per tree from the forest's `RandomState`, and each tree's
//! bootstrap sample from a `RandomState` seeded with that tree's seed.
//!
//! scikit-learn grows a tree on a bootstrap sample by passing how often each
//! row was drawn as its sample weight (rows are never duplicated), so a
//! sample here is a vector of per-row counts.

use super::rng::{Mt19937, RAND_R_MAX};

/// The trees' `random_state`s: `_set_random_states` draws one
/// `randint(np.iinfo(np.int32).max)` per tree, in order, from the forest's
/// `RandomState(random_state)`.
pub fn tree_seeds(random_state: u32, n_trees: usize) -> Vec<u32> {
    let mut mt = Mt19937::new(random_state);
    (0..n_trees)
        .map(|_| mt.randint(0, i64::from(RAND_R_MAX)) as u32)
        .collect()
}

/// `np.bincount(RandomState(seed).randint(0, n_rows, n_draws), minlength=n_rows)`.
///
/// numpy's vector `randint` for a range below 2^32 takes one masked 32-bit
/// draw per value (rejecting those past the range), the same stream as
/// repeated scalar draws; a one-row range consumes no draws at all.
pub fn uniform_counts(seed: u32, n_rows: usize, n_draws: usize) -> Vec<f64> {
    let mut mt = Mt19937::new(seed);
    let mut counts = vec![0.0; n_rows];
    for _ in 0..n_draws {
        counts[mt.randint(0, n_rows as i64) as usize] += 1.0;
    }
    counts
}

/// `np.bincount(RandomState(seed).choice(n, n_draws, replace=True, p=p))`
/// with `p = weights / np.sum(weights)` (scikit-learn's draw when the forest
/// has sample weights, e.g. `class_weight="balanced"`): the legacy `choice`
/// searches the normalised cumulative sum with `random_sample` draws.
pub fn weighted_counts(seed: u32, weights: &[f64], n_draws: usize) -> Vec<f64> {
    let total = crate::kernels::columns::numpy_sum(weights);
    let mut cdf = Vec::with_capacity(weights.len());
    let mut running = 0.0;
    for &w in weights {
        running += w / total;
        cdf.push(running);
    }
    if let Some(&last) = cdf.last() {
        for c in &mut cdf {
            *c /= last;
        }
    }
    let mut mt = Mt19937::new(seed);
    let mut counts = vec![0.0; weights.len()];
    for _ in 0..n_draws {
        let u = random_sample(&mut mt);
        // searchsorted(side="right"): the first entry above `u`.
        let row = cdf.partition_point(|&c| c <= u).min(weights.len() - 1);
        counts[row] += 1.0;
    }
    counts
}

/// numpy's legacy `random_sample`: 53 random bits from two 32-bit draws.
fn random_sample(mt: &mut Mt19937) -> f64 {
    let a = mt.next_u32() >> 5;
    let b = mt.next_u32() >> 6;
    (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
}

/// `compute_sample_weight("balanced", y, indices=sample)` times the sample's
/// counts (`"balanced_subsample"`): each class weighs
/// `n_draws / (classes drawn * draws of the class)` within the sample.
pub fn balance_sample(counts: &mut [f64], classes: &[f64], n_classes: usize) {
    let mut drawn = vec![0.0; n_classes];
    for (&c, &k) in counts.iter().zip(classes) {
        drawn[k as usize] += c;
    }
    let n_draws: f64 = drawn.iter().sum();
    let present = drawn.iter().filter(|&&d| d > 0.0).count() as f64;
    for (c, &k) in counts.iter_mut().zip(classes) {
        let d = drawn[k as usize];
        // Rows of classes the sample missed were drawn zero times already.
        if d > 0.0 {
            *c *= n_draws / (present * d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_seeds_match_numpy() {
        // np.random.RandomState(0).randint(np.iinfo(np.int32).max, size=5), which
        // numpy 2.4 gives equal to five scalar draws in a row.
        assert_eq!(
            tree_seeds(0, 5),
            [
                209_652_396,
                398_764_591,
                924_231_285,
                1_478_610_112,
                441_365_315
            ]
        );
    }

    fn draws(counts: &[f64]) -> Vec<usize> {
        counts
            .iter()
            .enumerate()
            .flat_map(|(i, &c)| std::iter::repeat_n(i, c as usize))
            .collect()
    }

    #[test]
    fn uniform_counts_match_numpy_randint_with_size() {
        // sorted(np.random.RandomState(12345).randint(0, 1025, 12)): a range
        // of 1025 masks to 2047, so about half the 32-bit draws are rejected.
        let counts = uniform_counts(12_345, 1025, 12);
        assert_eq!(
            draws(&counts),
            [81, 105, 129, 267, 382, 482, 546, 654, 713, 759, 769, 882]
        );
        // A single row: every draw is row 0 and the generator is not advanced.
        assert_eq!(uniform_counts(7, 1, 3), [3.0]);
    }

    #[test]
    fn weighted_counts_match_numpy_choice() {
        // w = [0.5, 2, 0, 1.5, 1, 3];
        // np.random.RandomState(99).choice(6, 15, replace=True, p=w / np.sum(w))
        // = [5, 3, 5, 0, 5, 4, 1, 0, 5, 0, 5, 5, 3, 3, 5].
        let counts = weighted_counts(99, &[0.5, 2.0, 0.0, 1.5, 1.0, 3.0], 15);
        assert_eq!(counts, [3.0, 1.0, 0.0, 3.0, 1.0, 7.0]);
        // np.random.RandomState(3).random_sample(3).
        let mut mt = Mt19937::new(3);
        let want = [
            0.550_797_902_574_575_5,
            0.708_147_822_618_104_8,
            0.290_904_738_912_944_3,
        ];
        assert_eq!(want.map(|_| random_sample(&mut mt)), want);
    }

    #[test]
    fn balanced_subsample_weights_the_drawn_classes() {
        // Classes 0 0 1 2 drawn 2 1 3 0 times: class 0 drawn 3 times, class 1
        // 3 times, class 2 never, so 2 classes present and 6 draws:
        // weights 6 / (2 * 3) = 1 per draw.
        let mut counts = [2.0, 1.0, 3.0, 0.0];
        balance_sample(&mut counts, &[0.0, 0.0, 1.0, 2.0], 3);
        assert_eq!(counts, [2.0, 1.0, 3.0, 0.0]);
        let mut counts = [4.0, 0.0, 1.0];
        balance_sample(&mut counts, &[0.0, 0.0, 1.0], 2);
        assert_eq!(counts, [4.0 * 5.0 / 8.0, 0.0, 5.0 / 2.0]);
    }
}
