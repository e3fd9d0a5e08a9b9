//! The two random streams a scikit-learn tree reads: numpy's legacy
//! `RandomState` (MT19937), which draws the splitter's seed, and the tree
//! module's xorshift generator (`our_rand_r`), which samples features.

/// Largest value `our_rand_r` returns, and the exclusive bound of the seed draw.
pub const RAND_R_MAX: u32 = 0x7FFF_FFFF;

const N: usize = 624;
const M: usize = 397;

/// Mersenne Twister as numpy's `RandomState(seed)` seeds it for a scalar seed.
pub struct Mt19937 {
    state: [u32; N],
    index: usize,
}

impl Mt19937 {
    /// Seeds with Knuth's linear recurrence (`init_genrand`), as numpy does
    /// for an integer seed.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: N }
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % N] & 0x7FFF_FFFF);
            let mut next = self.state[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_B0DF;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// The next 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C_5680;
        y ^= (y << 15) & 0xEFC6_0000;
        y ^ (y >> 18)
    }

    /// `RandomState.randint(low, high)` for a range below 2^32: numpy's
    /// legacy masked rejection sampling on 32-bit draws.
    pub fn randint(&mut self, low: i64, high: i64) -> i64 {
        let range = (high - low - 1) as u32;
        if range == 0 {
            return low;
        }
        let mut mask = range;
        for shift in [1, 2, 4, 8, 16] {
            mask |= mask >> shift;
        }
        loop {
            let draw = self.next_u32() & mask;
            if draw <= range {
                return low + i64::from(draw);
            }
        }
    }
}

/// The seed a scikit-learn tree's splitter draws from `random_state`.
pub fn splitter_seed(random_state: u32) -> u32 {
    Mt19937::new(random_state).randint(0, i64::from(RAND_R_MAX)) as u32
}

/// scikit-learn's xorshift step (`our_rand_r`); a zero state restarts at 1.
pub fn our_rand_r(state: &mut u32) -> u32 {
    if *state == 0 {
        *state = 1;
    }
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state % (RAND_R_MAX + 1)
}

/// A draw in `[low, high)` (`rand_int`).
pub fn rand_int(low: usize, high: usize, state: &mut u32) -> usize {
    low + (our_rand_r(state) as usize) % (high - low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_numpy() {
        // numpy 2.4: np.random.RandomState(5489).randint(0, 2**32, 3, dtype=np.uint64)
        // gives the reference genrand outputs below.
        let mut mt = Mt19937::new(5489);
        assert_eq!(
            [mt.next_u32(), mt.next_u32(), mt.next_u32()],
            [3_499_211_612, 581_869_302, 3_890_346_734]
        );
    }

    #[test]
    fn seeds_match_numpy_randint() {
        // [np.random.RandomState(s).randint(0, 2**31 - 1) for s in SEEDS] (numpy 2.4).
        const SEEDS: [(u32, u32); 4] = [
            (0, 209_652_396),
            (1, 1_791_095_845),
            (42, 1_608_637_542),
            (4_294_967_295, 419_326_371),
        ];
        for (seed, want) in SEEDS {
            assert_eq!(splitter_seed(seed), want, "random_state={seed}");
        }
    }

    #[test]
    fn rand_r_stream_is_xorshift() {
        let mut state = 0;
        let first = our_rand_r(&mut state);
        // 1 ^ (1 << 13) = 8193; ^ (8193 >> 17) = 8193; ^ (8193 << 5) = 270369.
        assert_eq!(first, 270_369);
        assert!((0..1000).all(|_| rand_int(3, 10, &mut state) < 10));
    }
}
