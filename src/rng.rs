//! Explicit randomness: one seed becomes a ChaCha8 stream, and shuffles and draws use our own
//! small algorithms on it, so that the same seed gives the same result on every machine and
//! every version of `rand` (candle's CPU generator cannot be seeded at all).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator used everywhere.
pub type Rng = ChaCha8Rng;

/// A generator for `seed`; different `stream`s of one seed are independent.
pub fn seeded(seed: u64, stream: u64) -> Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The generator of the resampling loops, where draws are counted in billions (a report on
/// 2 M runs draws ~10¹⁰ indices): wyrand (Wang Yi's wyhash v4.2, the generator of the
/// `fastrand` crate, output for output), whose state is a counter so that successive outputs
/// do not wait on each other; several times cheaper than ChaCha8 here. It is always seeded
/// from a ChaCha8 stream ([`Fast::from_stream`]), so one seed still decides everything.
#[derive(Debug, Clone)]
pub struct Fast(u64);

impl Fast {
    /// A generator whose state is the next 64 bits of `stream`.
    pub fn from_stream(stream: &mut impl RngCore) -> Self {
        Self(stream.next_u64())
    }

    /// A generator with this exact state (`fastrand::Rng::with_seed`).
    pub fn from_state(state: u64) -> Self {
        Self(state)
    }
}

impl RngCore for Fast {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x2d35_8dcc_aa6c_78a5);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0x8bb8_4b93_962e_acc9);
        (t as u64) ^ (t >> 64) as u64
    }

    /// The low half of [`next_u64`](Self::next_u64), as `fastrand` takes it.
    #[inline]
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// A uniform integer in `0..n` (`n > 0`), without modulo bias (Lemire's method).
pub fn below(rng: &mut impl RngCore, n: u64) -> u64 {
    debug_assert!(n > 0);
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// A uniform integer in `0..n` for `0 < n ≤ 2³²`, from 32 random bits (Lemire's method): half
/// the generator output of [`below`], for the bootstrap's inner loops.
pub fn below_u32(rng: &mut impl RngCore, n: u32) -> u32 {
    below_u32_with(rng, n, rejection_threshold(n))
}

/// The rejection threshold of [`below_u32_with`] for `n` (`2³² mod n`): computed once per
/// bound when many draws share it, since the division costs more than the draw.
pub fn rejection_threshold(n: u32) -> u32 {
    if n == 0 {
        0
    } else {
        n.wrapping_neg() % n
    }
}

/// [`below_u32`] with its threshold precomputed by [`rejection_threshold`]: the same draws.
pub fn below_u32_with(rng: &mut impl RngCore, n: u32, threshold: u32) -> u32 {
    debug_assert!(n > 0);
    loop {
        let m = u64::from(rng.next_u32()) * u64::from(n);
        if (m as u32) >= threshold {
            return (m >> 32) as u32;
        }
    }
}

/// A uniform float in `[0, 1)` with 53 random bits.
pub fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Fisher-Yates shuffle.
pub fn shuffle<T>(rng: &mut impl RngCore, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// `k` distinct indices of `0..n`, chosen uniformly, in increasing order.
pub fn choose_indices(rng: &mut impl RngCore, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    // partial Fisher-Yates: the first k positions become a uniform sample
    for i in 0..k.min(n) {
        let j = i + below(rng, (n - i) as u64) as usize;
        all.swap(i, j);
    }
    let mut chosen = all[..k.min(n)].to_vec();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = (0..4).map(|_| seeded(7, 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(seeded(7, 1).next_u64(), seeded(7, 2).next_u64());
        assert_ne!(seeded(7, 1).next_u64(), seeded(8, 1).next_u64());
    }

    #[test]
    fn shuffle_is_a_permutation_and_reproducible() {
        let mut a: Vec<u32> = (0..1000).collect();
        let mut b = a.clone();
        shuffle(&mut seeded(3, 0), &mut a);
        shuffle(&mut seeded(3, 0), &mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn below_is_roughly_uniform() {
        let mut rng = seeded(11, 0);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[below(&mut rng, 3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
        let mut counts = [0usize; 5];
        for _ in 0..50_000 {
            counts[below_u32(&mut rng, 5) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
        let u = unit(&mut rng);
        assert!((0.0..1.0).contains(&u));
    }

    /// `Fast` is `fastrand`'s generator, output for output, and its bounded draws are
    /// `fastrand`'s (the reference implementation, a dev-dependency).
    #[test]
    fn fast_is_fastrand_wyrand() {
        for seed in [0, 1, 42, u64::MAX, 0x9e37_79b9_7f4a_7c15] {
            let (mut ours, mut theirs) = (Fast::from_state(seed), fastrand::Rng::with_seed(seed));
            for _ in 0..1000 {
                assert_eq!(ours.next_u64(), theirs.u64(..));
            }
            for n in [1u32, 2, 3, 7, 1000, 3340, u32::MAX] {
                let threshold = rejection_threshold(n);
                for _ in 0..200 {
                    assert_eq!(below_u32_with(&mut ours, n, threshold), theirs.u32(..n));
                }
            }
        }
        // seeded from a stream: one seed decides it, and streams differ
        let x = Fast::from_stream(&mut seeded(5, 1)).next_u64();
        assert_eq!(x, Fast::from_stream(&mut seeded(5, 1)).next_u64());
        assert_ne!(x, Fast::from_stream(&mut seeded(5, 2)).next_u64());
        let mut counts = [0usize; 7];
        let mut rng = Fast::from_stream(&mut seeded(9, 0));
        for _ in 0..70_000 {
            counts[below_u32(&mut rng, 7) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
    }

    #[test]
    fn choose_indices_distinct_sorted() {
        let idx = choose_indices(&mut seeded(1, 0), 100, 10);
        assert_eq!(idx.len(), 10);
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(choose_indices(&mut seeded(1, 0), 5, 9), vec![0, 1, 2, 3, 4]);
    }
}
