//! Split criteria with scikit-learn's running sums: the same update
//! direction (forward from the last position or backward from the node's end,
//! whichever is shorter) and the same operation order, so proxies and
//! impurities round exactly as theirs do.

use serde::{Deserialize, Serialize};

/// Impurity measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Regression: mean squared error (also scikit-learn's `friedman_mse`).
    SquaredError,
    /// Classification: Gini impurity.
    Gini,
    /// Classification: Shannon entropy (`entropy` and `log_loss`).
    Entropy,
}

/// Running weighted sums over `samples[start..end]`, split at `pos`.
pub struct Criterion<'a> {
    kind: Kind,
    /// Regression targets or class indices `0..n_classes`.
    y: &'a [f64],
    weights: Option<&'a [f64]>,
    /// Total weight of the training rows.
    pub weighted_n_samples: f64,
    start: usize,
    end: usize,
    pos: usize,
    /// One sum per class (one sum of `w * y` for regression).
    sum_total: Vec<f64>,
    sum_left: Vec<f64>,
    sum_right: Vec<f64>,
    sq_sum_total: f64,
    pub weighted_n_node: f64,
    pub weighted_n_left: f64,
    pub weighted_n_right: f64,
}

impl<'a> Criterion<'a> {
    /// A criterion over `y`; `n_classes` is 1 for regression.
    pub fn new(kind: Kind, y: &'a [f64], weights: Option<&'a [f64]>, n_classes: usize) -> Self {
        Self {
            kind,
            y,
            weights,
            weighted_n_samples: 0.0,
            start: 0,
            end: 0,
            pos: 0,
            sum_total: vec![0.0; n_classes],
            sum_left: vec![0.0; n_classes],
            sum_right: vec![0.0; n_classes],
            sq_sum_total: 0.0,
            weighted_n_node: 0.0,
            weighted_n_left: 0.0,
            weighted_n_right: 0.0,
        }
    }

    fn weight(&self, i: usize) -> f64 {
        self.weights.map_or(1.0, |w| w[i])
    }

    fn regression(&self) -> bool {
        self.kind == Kind::SquaredError
    }

    /// Adds `w` for sample `i` to `sums` (its class, or `w * y` for regression).
    fn add(&self, sums: &mut [f64], i: usize, w: f64, sign: f64) {
        if self.regression() {
            sums[0] += sign * (w * self.y[i]);
        } else {
            sums[self.y[i] as usize] += sign * w;
        }
    }

    /// Starts a node over `samples[start..end]`.
    pub fn init(&mut self, samples: &[usize], start: usize, end: usize) {
        self.start = start;
        self.end = end;
        self.weighted_n_node = 0.0;
        self.sq_sum_total = 0.0;
        let mut total = std::mem::take(&mut self.sum_total);
        total.fill(0.0);
        for &i in &samples[start..end] {
            let w = self.weight(i);
            if self.regression() {
                let wy = w * self.y[i];
                total[0] += wy;
                self.sq_sum_total += wy * self.y[i];
            } else {
                total[self.y[i] as usize] += w;
            }
            self.weighted_n_node += w;
        }
        self.sum_total = total;
        self.reset();
    }

    /// Everything on the right.
    pub fn reset(&mut self) {
        self.pos = self.start;
        self.sum_left.fill(0.0);
        self.sum_right.copy_from_slice(&self.sum_total);
        self.weighted_n_left = 0.0;
        self.weighted_n_right = self.weighted_n_node;
    }

    fn reverse_reset(&mut self) {
        self.pos = self.end;
        self.sum_right.fill(0.0);
        self.sum_left.copy_from_slice(&self.sum_total);
        self.weighted_n_right = 0.0;
        self.weighted_n_left = self.weighted_n_node;
    }

    /// Moves the split forward to `new_pos` (`>=` the current position).
    pub fn update(&mut self, samples: &[usize], new_pos: usize) {
        let forward = new_pos - self.pos <= self.end - new_pos;
        if !forward {
            self.reverse_reset();
        }
        let mut left = std::mem::take(&mut self.sum_left);
        if forward {
            for &i in &samples[self.pos..new_pos] {
                let w = self.weight(i);
                self.add(&mut left, i, w, 1.0);
                self.weighted_n_left += w;
            }
        } else {
            for &i in samples[new_pos..self.end].iter().rev() {
                let w = self.weight(i);
                self.add(&mut left, i, w, -1.0);
                self.weighted_n_left -= w;
            }
        }
        self.weighted_n_right = self.weighted_n_node - self.weighted_n_left;
        for ((r, t), l) in self.sum_right.iter_mut().zip(&self.sum_total).zip(&left) {
            *r = t - l;
        }
        self.sum_left = left;
        self.pos = new_pos;
    }

    /// Impurity of the whole node.
    pub fn node_impurity(&self) -> f64 {
        let n = self.weighted_n_node;
        match self.kind {
            Kind::SquaredError => {
                let mean = self.sum_total[0] / n;
                self.sq_sum_total / n - mean * mean
            }
            Kind::Gini => gini(&self.sum_total, n),
            Kind::Entropy => entropy(&self.sum_total, n),
        }
    }

    /// Impurities of the left and right children at the current position.
    pub fn children_impurity(&self, samples: &[usize]) -> (f64, f64) {
        let (nl, nr) = (self.weighted_n_left, self.weighted_n_right);
        match self.kind {
            Kind::SquaredError => {
                let mut sq_left = 0.0;
                for &i in &samples[self.start..self.pos] {
                    sq_left += self.weight(i) * self.y[i] * self.y[i];
                }
                let sq_right = self.sq_sum_total - sq_left;
                let (ml, mr) = (self.sum_left[0] / nl, self.sum_right[0] / nr);
                (sq_left / nl - ml * ml, sq_right / nr - mr * mr)
            }
            Kind::Gini => (gini(&self.sum_left, nl), gini(&self.sum_right, nr)),
            Kind::Entropy => (entropy(&self.sum_left, nl), entropy(&self.sum_right, nr)),
        }
    }

    /// A quantity ordered like the impurity decrease, cheaper to compute.
    pub fn proxy_improvement(&self, samples: &[usize]) -> f64 {
        if self.regression() {
            let (l, r) = (self.sum_left[0], self.sum_right[0]);
            return l * l / self.weighted_n_left + r * r / self.weighted_n_right;
        }
        let (il, ir) = self.children_impurity(samples);
        -self.weighted_n_right * ir - self.weighted_n_left * il
    }

    /// The weighted impurity decrease of the current split.
    pub fn improvement(&self, parent: f64, left: f64, right: f64) -> f64 {
        let n = self.weighted_n_node;
        (n / self.weighted_n_samples)
            * (parent - self.weighted_n_right / n * right - self.weighted_n_left / n * left)
    }

    /// The node's value: its mean, or its class fractions.
    pub fn node_value(&self) -> impl Iterator<Item = f64> + '_ {
        self.sum_total.iter().map(|s| s / self.weighted_n_node)
    }
}

fn gini(counts: &[f64], n: f64) -> f64 {
    let mut sq = 0.0;
    for c in counts {
        sq += c * c;
    }
    1.0 - sq / (n * n)
}

fn entropy(counts: &[f64], n: f64) -> f64 {
    let mut e = 0.0;
    for &c in counts {
        if c > 0.0 {
            let p = c / n;
            e -= p * p.ln();
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squared_error_by_hand() {
        let y = [1.0, 2.0, 3.0, 6.0];
        let samples = [0, 1, 2, 3];
        let mut c = Criterion::new(Kind::SquaredError, &y, None, 1);
        c.weighted_n_samples = 4.0;
        c.init(&samples, 0, 4);
        // mean 3, mean of squares 12.5: variance 3.5.
        assert_eq!(c.node_impurity(), 3.5);
        c.update(&samples, 3);
        // left {1,2,3}: variance 2/3; right {6}: 0.
        let (l, r) = c.children_impurity(&samples);
        assert!((l - 2.0 / 3.0).abs() < 1e-15 && r == 0.0);
        assert_eq!(c.proxy_improvement(&samples), 36.0 / 3.0 + 36.0);
        assert!((c.improvement(3.5, l, r) - (3.5 - 0.5)).abs() < 1e-15);
        c.reset();
        c.update(&samples, 1);
        assert_eq!((c.weighted_n_left, c.weighted_n_right), (1.0, 3.0));
        // Past the middle the sums are taken back from the node's end.
        c.update(&samples, 3);
        assert_eq!((c.sum_left[0], c.sum_right[0]), (6.0, 6.0));
    }

    #[test]
    fn gini_and_entropy_by_hand() {
        let y = [0.0, 0.0, 1.0, 1.0];
        let samples = [0, 1, 2, 3];
        let w = [1.0, 3.0, 2.0, 2.0];
        let mut g = Criterion::new(Kind::Gini, &y, Some(&w), 2);
        g.init(&samples, 0, 4);
        assert_eq!(g.node_impurity(), 0.5);
        g.update(&samples, 2);
        assert_eq!(g.children_impurity(&samples), (0.0, 0.0));
        let mut e = Criterion::new(Kind::Entropy, &y, None, 2);
        e.init(&samples, 0, 4);
        assert!((e.node_impurity() - std::f64::consts::LN_2).abs() < 1e-15);
        assert_eq!(e.node_value().collect::<Vec<_>>(), vec![0.5, 0.5]);
    }
}
