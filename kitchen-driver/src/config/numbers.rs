//! Numbers in kitchen.yml that Rust turns into durations or counts: YAML holds any float
//! (`sleep: 1e300`, `.inf`), and `Duration::from_secs_f64` panics on what it cannot hold, so
//! each such key is checked when its block is read and a bad one is a config error naming it.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The largest number of seconds accepted for a wait (about 31 years): far beyond any real
/// wait, and well inside what `Duration` and the timers hold.
pub(crate) const MAX_SECONDS: f64 = 1e9;

/// Checks a number of seconds: finite and at most [`MAX_SECONDS`] (negative means 0, as
/// before).
///
/// # Errors
/// A message saying what is accepted.
pub(crate) fn check_seconds(secs: f64) -> Result<f64, String> {
    if secs.is_finite() && secs <= MAX_SECONDS {
        Ok(secs)
    } else {
        Err(format!(
            "{secs} is not a number of seconds kitchen-driver can wait; give a number from 0 to {MAX_SECONDS:.0}"
        ))
    }
}

/// `deserialize_with` for a key holding seconds (see [`check_seconds`]).
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    check_seconds(f64::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// `deserialize_with` for an optional count of CPUs (Docker's `--cpus`): finite, above 0
/// and small enough to be counted in nano-CPUs.
pub(crate) fn cpus<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let Some(cpus) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    if cpus.is_finite() && cpus > 0.0 && cpus <= 1e6 {
        Ok(Some(cpus))
    } else {
        Err(serde::de::Error::custom(format!(
            "{cpus} is not a usable number of CPUs; give a number above 0, such as 1.5"
        )))
    }
}

/// A wait of `secs` seconds, never panicking: checked values always fit, and anything else
/// (negative, NaN) waits 0.
pub(crate) fn duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_that_do_not_fit_are_refused() {
        assert_eq!(check_seconds(2.5), Ok(2.5));
        assert_eq!(check_seconds(-1.0), Ok(-1.0));
        for bad in [1e300, f64::INFINITY, f64::NAN, 1e10] {
            let err = check_seconds(bad).unwrap_err();
            assert!(err.contains("from 0 to 1000000000"), "{err}");
        }
        assert_eq!(duration(-3.0), Duration::ZERO);
        assert_eq!(duration(f64::NAN), Duration::ZERO);
        assert_eq!(duration(1.5), Duration::from_millis(1500));
    }
}
