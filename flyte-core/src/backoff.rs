//! [`Backoff`]: how long to wait between attempts of a failed task.

use std::time::Duration;

/// How long to wait before each retry: exponential, capped, with jitter.
///
/// The wait before retry `n` (n = 1 for the second attempt) is
/// `min(cap, base * factor^(n-1))`; with jitter on, a uniformly random
/// duration between half of that and all of it ("equal jitter": retries
/// of many items spread out, and none waits less than half).
///
/// The default ([`Backoff::DEFAULT`]): base 200 ms, factor 2, cap 30 s,
/// jitter on, i.e. about 0.1–0.2 s, 0.2–0.4 s, 0.4–0.8 s, ...
///
/// # Examples
///
/// ```
/// use flyte_core::Backoff;
/// use std::time::Duration;
///
/// const QUICK: Backoff = Backoff::exponential(Duration::from_millis(10))
///     .factor(3.0)
///     .cap(Duration::from_millis(50))
///     .jitter(false);
/// assert_eq!(QUICK.delay(1, 0.0), Duration::from_millis(10));
/// assert_eq!(QUICK.delay(2, 0.0), Duration::from_millis(30));
/// assert_eq!(QUICK.delay(3, 0.0), Duration::from_millis(50)); // capped
/// assert_eq!(Backoff::fixed(Duration::from_secs(1)).delay(5, 0.3), Duration::from_secs(1));
/// ```
///
/// # Panics
///
/// [`Backoff::factor`] panics on a factor below 1, infinite or NaN; in a `static` or
/// `const` that is a compile error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: f64,
    cap: Duration,
    jitter: bool,
}

impl Backoff {
    /// Base 200 ms, factor 2, cap 30 s, jitter on.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_millis(200),
        factor: 2.0,
        cap: Duration::from_secs(30),
        jitter: true,
    };

    /// Exponential backoff from `base`, with the default factor, cap and jitter.
    #[must_use]
    pub const fn exponential(base: Duration) -> Self {
        Backoff {
            base,
            ..Self::DEFAULT
        }
    }

    /// The same wait before every retry, without jitter.
    #[must_use]
    pub const fn fixed(delay: Duration) -> Self {
        Backoff {
            base: delay,
            factor: 1.0,
            cap: delay,
            jitter: false,
        }
    }

    /// Retry at once.
    #[must_use]
    pub const fn none() -> Self {
        Self::fixed(Duration::ZERO)
    }

    /// Each wait is `factor` times the one before (at least 1).
    ///
    /// # Panics
    ///
    /// When `factor` is below 1, infinite or NaN (a compile error in a `static`).
    #[must_use]
    pub const fn factor(mut self, factor: f64) -> Self {
        if !factor.is_finite() || factor < 1.0 {
            panic!("Backoff::factor must be a finite number of at least 1.0");
        }
        self.factor = factor;
        self
    }

    /// No wait is longer than `cap`.
    #[must_use]
    pub const fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Random spread on (`true`, the default) or off.
    #[must_use]
    pub const fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// The wait before retry `retry` (1 = before the second attempt), given
    /// `unit_random` uniformly drawn from `[0, 1)` (used only with jitter).
    pub fn delay(&self, retry: u32, unit_random: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(1_000) as i32;
        let grown = self.base.as_secs_f64() * self.factor.powi(exponent);
        let capped = grown.min(self.cap.as_secs_f64());
        let seconds = if self.jitter {
            capped * (0.5 + 0.5 * unit_random.clamp(0.0, 1.0))
        } else {
            capped
        };
        Duration::try_from_secs_f64(seconds).unwrap_or(self.cap)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_grow_and_cap_with_jitter_within_half() {
        let b = Backoff::DEFAULT;
        assert_eq!(b.delay(1, 0.999_999).as_millis(), 199);
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(400));
        assert_eq!(b.delay(40, 0.0), Duration::from_secs(15));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(30));
    }

    #[test]
    fn non_finite_factors_are_refused() {
        for factor in [f64::NAN, f64::INFINITY, 0.5] {
            let refused = std::panic::catch_unwind(|| Backoff::DEFAULT.factor(factor));
            assert!(refused.is_err(), "factor {factor} was accepted");
        }
        assert_eq!(Backoff::DEFAULT.factor(3.0).delay(2, 1.0).as_millis(), 600);
    }

    #[test]
    fn none_is_immediate() {
        assert_eq!(Backoff::none().delay(7, 0.5), Duration::ZERO);
    }
}
