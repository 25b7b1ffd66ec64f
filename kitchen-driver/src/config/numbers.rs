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
            "{} is not a number of seconds kitchen-driver can wait; give a number from 0 to {MAX_SECONDS:.0}",
            shown(secs)
        ))
    }
}

/// A number as a user wrote it, short: `1e300` rather than its 301 digits.
fn shown(n: f64) -> String {
    if n.is_finite() && n.abs() >= 1e15 {
        format!("{n:e}")
    } else {
        n.to_string()
    }
}

/// A number as kitchen.yml may hold it: YAML 1.1 reads `1e300` (no dot) as text, and the
/// loader passes `.inf` and `.nan` on as text too.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(f64),
    Text(String),
}

/// `deserialize_with` for a key holding seconds (see [`check_seconds`]).
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let secs = match NumberOrText::deserialize(d)? {
        NumberOrText::Number(n) => n,
        NumberOrText::Text(t) => return Err(serde::de::Error::custom(text_for_number(&t))),
    };
    check_seconds(secs).map_err(serde::de::Error::custom)
}

/// Why the text `t` is not the number a key wants.
fn text_for_number(t: &str) -> String {
    let lower = t.to_ascii_lowercase();
    if matches!(lower.as_str(), ".inf" | "+.inf" | "-.inf" | ".nan") {
        return format!(
            "{t} is not a number of seconds kitchen-driver can wait; give a number from 0 to {MAX_SECONDS:.0}"
        );
    }
    if t.parse::<f64>().is_ok() {
        return format!(
            "`{t}` is text, not a number, in YAML 1.1 as test-kitchen reads it (a float needs a dot and a signed exponent, as in 1.0e+3); give a number of seconds from 0 to {MAX_SECONDS:.0}"
        );
    }
    format!("expected a number of seconds, found the text {t:?}")
}

/// Rewrites serde's message for a whole number too large for its key (the loader passes
/// such numbers on as text, so serde calls them a string): `invalid type: string "99..",
/// expected u32` becomes a message about the number's size.
pub(crate) fn explain_big_integer(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid type: string \"")?;
    let (digits, expected) = rest.split_once("\", expected ")?;
    let digits_only = digits.strip_prefix('-').unwrap_or(digits);
    if digits_only.is_empty() || !digits_only.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let max = match expected {
        "u8" => u64::from(u8::MAX).to_string(),
        "u16" => u64::from(u16::MAX).to_string(),
        "u32" => u32::MAX.to_string(),
        "u64" => u64::MAX.to_string(),
        "i32" => i32::MAX.to_string(),
        "i64" => i64::MAX.to_string(),
        _ => return None,
    };
    Some(format!(
        "{digits} is too large; give a whole number up to {max}"
    ))
}

/// `deserialize_with` for an optional count of CPUs (Docker's `--cpus`): finite, above 0
/// and small enough to be counted in nano-CPUs.
pub(crate) fn cpus<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let cpus = match Option::<NumberOrText>::deserialize(d)? {
        None => return Ok(None),
        Some(NumberOrText::Number(n)) => n,
        Some(NumberOrText::Text(t)) => {
            return Err(serde::de::Error::custom(format!(
                "expected a number of CPUs, such as 1.5, found the text {t:?}"
            )));
        }
    };
    if cpus.is_finite() && cpus > 0.0 && cpus <= 1e6 {
        Ok(Some(cpus))
    } else {
        Err(serde::de::Error::custom(format!(
            "{} is not a usable number of CPUs; give a number above 0, such as 1.5",
            shown(cpus)
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

    #[test]
    fn big_integers_are_explained() {
        assert_eq!(
            explain_big_integer("invalid type: string \"99999999999\", expected u32").unwrap(),
            "99999999999 is too large; give a whole number up to 4294967295"
        );
        assert_eq!(
            explain_big_integer("invalid type: string \"many\", expected u32"),
            None
        );
    }
}
