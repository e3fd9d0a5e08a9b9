//! Candidate sets of the neighbour search: every training row that may still
//! be among the `k` nearest of a test row, with lower and upper bounds of its
//! squared distance, pruned against the `k`-th smallest upper bound and
//! finally re-ranked on exact distances (ties to the lower training index).
//!
//! A row is only ever dropped when its lower bound exceeds the exact
//! distances of `k` kept rows, so it sorts after them in the (exact distance,
//! index) order whatever its index: the rows written by `finish` are the first
//! `k` of that total order.

/// A training row that may still be among the nearest of a test row.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    /// Lower bound of the exact squared distance (equal to it once exact).
    pub(super) lower: f64,
    /// Upper bound of the exact squared distance (equal to it once exact).
    pub(super) upper: f64,
    pub(super) index: usize,
    pub(super) exact: bool,
}

/// Sort key treating NaN (overflowed distances) as +inf.
fn key(v: f64) -> f64 {
    if v.is_nan() {
        f64::INFINITY
    } else {
        v
    }
}

/// Whether a lower bound does not exclude a row (NaN bounds never exclude).
#[inline]
pub(super) fn within(lower: f64, threshold: f64) -> bool {
    lower <= threshold || lower.is_nan()
}

/// Exact squared Euclidean distance (sum of squared differences).
pub(super) fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Smallest lower bound `lo + norm_lo[j] + tile[j]` over a block whose length
/// is a multiple of 8, with 8 independent lanes (vectorisable). Only used when
/// no bound can be NaN.
#[inline]
pub(super) fn min_lower(lo: f64, tile: &[f64], norm_lo: &[f64]) -> f64 {
    let mut acc = [f64::INFINITY; 8];
    for (g, l) in tile.chunks_exact(8).zip(norm_lo.chunks_exact(8)) {
        let (Ok(g), Ok(l)) = (<&[f64; 8]>::try_from(g), <&[f64; 8]>::try_from(l)) else {
            return f64::NEG_INFINITY;
        };
        for q in 0..8 {
            let v = lo + l[q] + g[q];
            acc[q] = if v < acc[q] { v } else { acc[q] };
        }
    }
    let m4 = [
        acc[0].min(acc[4]),
        acc[1].min(acc[5]),
        acc[2].min(acc[6]),
        acc[3].min(acc[7]),
    ];
    m4[0].min(m4[2]).min(m4[1].min(m4[3]))
}

/// Candidate set of one test row.
pub(super) struct RowState {
    pub(super) candidates: Vec<Candidate>,
    /// Every training row whose lower bound exceeds this is not a neighbour.
    pub(super) threshold: f64,
    pub(super) capacity: usize,
}

impl RowState {
    pub(super) fn new(k: usize) -> Self {
        let capacity = 2 * k + 64;
        RowState {
            candidates: Vec::with_capacity(capacity),
            threshold: f64::INFINITY,
            capacity,
        }
    }

    /// The `k`-th smallest upper bound among the candidates.
    fn kth_upper(&self, k: usize, scratch: &mut Vec<f64>) -> f64 {
        if self.candidates.len() < k {
            return f64::INFINITY;
        }
        scratch.clear();
        scratch.extend(self.candidates.iter().map(|c| key(c.upper)));
        let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, f64::total_cmp);
        *kth
    }

    fn make_exact(&mut self, test_row: &[f64], train: &[f64], p: usize) {
        for c in self.candidates.iter_mut().filter(|c| !c.exact) {
            let e = squared_distance(test_row, &train[c.index * p..(c.index + 1) * p]);
            c.lower = e;
            c.upper = e;
            c.exact = true;
        }
    }

    /// Drops every candidate whose lower bound exceeds the `k`-th smallest
    /// upper bound: `k` kept rows are strictly nearer, whatever the indices.
    fn prune(&mut self, k: usize, scratch: &mut Vec<f64>) {
        let t = self.kth_upper(k, scratch);
        self.threshold = t;
        self.candidates.retain(|c| within(c.lower, t));
    }

    /// Tightens the threshold and drops hopeless candidates; switches to
    /// exact distances when bounds alone do not shrink the set enough.
    pub(super) fn compact(
        &mut self,
        k: usize,
        test_row: &[f64],
        train: &[f64],
        p: usize,
        scratch: &mut Vec<f64>,
    ) {
        self.prune(k, scratch);
        if 2 * self.candidates.len() > self.capacity {
            self.make_exact(test_row, train, p);
            self.prune(k, scratch);
            if 2 * self.candidates.len() > self.capacity {
                // Genuine ties: let the set grow.
                self.capacity = 2 * self.candidates.len();
            }
        }
    }

    /// Writes the `index.len()` nearest (by exact distance, then index).
    pub(super) fn finish(
        &mut self,
        test_row: &[f64],
        train: &[f64],
        p: usize,
        index: &mut [usize],
        dist: &mut [f64],
    ) {
        self.make_exact(test_row, train, p);
        self.candidates.sort_unstable_by(|a, b| {
            key(a.lower)
                .total_cmp(&key(b.lower))
                .then(a.index.cmp(&b.index))
        });
        for (slot, c) in self.candidates.iter().take(index.len()).enumerate() {
            index[slot] = c.index;
            dist[slot] = c.lower;
        }
    }
}
