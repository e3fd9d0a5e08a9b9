//! scikit-learn's introsort with three-way partitioning
//! (`simultaneous_sort(..., use_three_way_partition=True)`), reproduced step
//! by step: it is not stable, and the order it leaves tied samples in decides
//! the order of every later float sum, so parity needs the same permutation.

/// Sorts `values` ascending, permuting `samples` alongside.
pub fn sort(values: &mut [f32], samples: &mut [usize]) {
    let n = values.len();
    if n == 0 {
        return;
    }
    let max_depth = 2 * ((n as f64).log2() as isize);
    introsort(values, samples, max_depth);
}

fn introsort(mut values: &mut [f32], mut samples: &mut [usize], mut max_depth: isize) {
    while values.len() > 15 {
        if max_depth <= 0 {
            heapsort(values, samples);
            return;
        }
        max_depth -= 1;
        let pivot = median3(values);
        let (mut i, mut l, mut r) = (0, 0, values.len());
        while i < r {
            if values[i] < pivot {
                swap(values, samples, i, l);
                i += 1;
                l += 1;
            } else if values[i] > pivot {
                r -= 1;
                swap(values, samples, i, r);
            } else {
                i += 1;
            }
        }
        introsort(&mut values[..l], &mut samples[..l], max_depth);
        values = &mut values[r..];
        samples = &mut samples[r..];
    }
    insertion_sort(values, samples);
}

fn median3(values: &[f32]) -> f32 {
    let n = values.len();
    let (a, b, c) = (values[0], values[n / 2], values[n - 1]);
    if a < b {
        if b < c {
            b
        } else if a < c {
            c
        } else {
            a
        }
    } else if b < c {
        if a < c {
            a
        } else {
            c
        }
    } else {
        b
    }
}

fn swap(values: &mut [f32], samples: &mut [usize], i: usize, j: usize) {
    values.swap(i, j);
    samples.swap(i, j);
}

fn insertion_sort(values: &mut [f32], samples: &mut [usize]) {
    for i in 1..values.len() {
        let (value, sample) = (values[i], samples[i]);
        let mut j = i;
        while j > 0 && values[j - 1] > value {
            values[j] = values[j - 1];
            samples[j] = samples[j - 1];
            j -= 1;
        }
        values[j] = value;
        samples[j] = sample;
    }
}

fn heapsort(values: &mut [f32], samples: &mut [usize]) {
    let n = values.len();
    let mut start = (n as isize - 2) / 2;
    loop {
        sift_down(values, samples, start.max(0) as usize, n);
        if start <= 0 {
            break;
        }
        start -= 1;
    }
    let mut end = n - 1;
    while end > 0 {
        swap(values, samples, 0, end);
        sift_down(values, samples, 0, end);
        end -= 1;
    }
}

fn sift_down(values: &mut [f32], samples: &mut [usize], start: usize, end: usize) {
    let mut root = start;
    loop {
        let child = root * 2 + 1;
        let mut max = root;
        if child < end && values[max] < values[child] {
            max = child;
        }
        if child + 1 < end && values[max] < values[child + 1] {
            max = child + 1;
        }
        if max == root {
            return;
        }
        swap(values, samples, root, max);
        root = max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_with_ties_and_keeps_pairs() {
        let mut state = 7u32;
        let raw: Vec<f32> = (0..500)
            .map(|_| (super::super::rng::our_rand_r(&mut state) % 13) as f32)
            .collect();
        let mut values = raw.clone();
        let mut samples: Vec<usize> = (0..raw.len()).collect();
        sort(&mut values, &mut samples);
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        assert!(samples.iter().zip(&values).all(|(&s, &v)| raw[s] == v));
    }

    #[test]
    fn heapsort_sorts() {
        let mut values = vec![3.0, 1.0, 2.0, 5.0, 4.0, 0.0];
        let mut samples: Vec<usize> = (0..6).collect();
        heapsort(&mut values, &mut samples);
        assert_eq!(values, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(samples, vec![5, 1, 2, 0, 4, 3]);
    }
}
