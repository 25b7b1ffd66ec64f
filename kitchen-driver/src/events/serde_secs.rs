//! Serialises a [`Duration`] as seconds in a JSON number (`12.345`), to the millisecond.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `d` as fractional seconds, rounded to the millisecond.
///
/// # Errors
/// Whatever the serializer returns.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(to_secs(*d))
}

/// Reads fractional seconds.
///
/// # Errors
/// When the value is not a non-negative, finite number.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
}

/// `d` in seconds, rounded to the millisecond.
pub fn to_secs(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// The same for an `Option<Duration>` (`null` when absent).
pub mod option {
    use super::*;

    /// Writes `Some(d)` as seconds, `None` as null.
    ///
    /// # Errors
    /// Whatever the serializer returns.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&to_secs(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads seconds or null.
    ///
    /// # Errors
    /// When the value is neither null nor a non-negative, finite number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
