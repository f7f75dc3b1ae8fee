//! Numbers with the bounds the servers enforce, so that a manifest Marathon would
//! answer with a 422 (`error.min`, `error.max`, `error.expected.int`) is refused at
//! load time with its file and line, before anything is written.
//!
//! Marathon's JSON readers are generated from its RAML types
//! (`docs/docs/rest-api/public/api/v2/types/*.raml`, copied in
//! `../shared/reference/marathon/app.raml`): `format: int32` is a Java `Int`, and
//! `minimum` / `maximum` are checked. Chronos reads its integers as Java `Int` too.
//! Error messages never quote the value (it may be a secret).

use serde::de::{Deserialize, Deserializer, Error};

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident($inner:ty): $check:expr, $expected:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // A wrong type keeps serde's message ("invalid type: string, expected …").
                let value = <$inner>::deserialize(deserializer)?;
                let check: fn($inner) -> bool = $check;
                if check(value) {
                    Ok(Self(value))
                } else {
                    Err(D::Error::custom(concat!("must be ", $expected)))
                }
            }
        }
    };
}

bounded!(
    /// A RAML `integer` of `format: int32` with `minimum: 0` (a Java `Int`): a whole
    /// number from 0 to 2³¹−1 (e.g. `instances`, app.raml:204-207).
    Int32(i64): |v| (0..=i64::from(i32::MAX)).contains(&v),
    "a whole number from 0 to 2147483647"
);

bounded!(
    /// A RAML `integer` of `format: int64` with `minimum: 0` (e.g.
    /// `unreachableStrategy.inactiveAfterSeconds`).
    Int64(i64): |v| v >= 0,
    "a whole number, 0 or more"
);

bounded!(
    /// A port that may be 0 ("assign one"): `numbers.AnyPort`, 0 to 65535.
    AnyPort(i64): |v| (0..=65535).contains(&v),
    "a port number from 0 to 65535"
);

bounded!(
    /// `cpus`: at least 0.001 (app.raml:153-159).
    Cpus(f64): |v| v >= 0.001 && v.is_finite(),
    "a number of at least 0.001"
);

bounded!(
    /// `mem`, `disk` and other amounts with `minimum: 0` (app.raml:171-178, 226-229).
    NonNegative(f64): |v| v >= 0.0 && v.is_finite(),
    "a number, 0 or more"
);

bounded!(
    /// `backoffFactor`: at least 1.0 (app.raml:113-116).
    BackoffFactor(f64): |v| v >= 1.0 && v.is_finite(),
    "a number of at least 1.0"
);

bounded!(
    /// `upgradeStrategy.minimumHealthCapacity` / `maximumOverCapacity`: a share from
    /// 0 to 1 (app.raml:55-68).
    Share(f64): |v| (0.0..=1.0).contains(&v),
    "a number from 0.0 to 1.0"
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bounds_hold_and_messages_never_quote_the_value() {
        assert_eq!(Int32::deserialize(json!(2147483647)).unwrap(), Int32(2147483647));
        for bad in [json!(2147483648u64), json!(-1)] {
            let e = Int32::deserialize(bad.clone()).unwrap_err().to_string();
            assert_eq!(e, "must be a whole number from 0 to 2147483647", "{bad}");
        }
        assert!(Int32::deserialize(json!(1.5)).is_err());
        assert!(Int32::deserialize(json!("3")).is_err());
        assert!(Cpus::deserialize(json!(0.001)).is_ok());
        assert!(Cpus::deserialize(json!(0)).is_err());
        assert!(NonNegative::deserialize(json!(-0.5)).is_err());
        assert!(Share::deserialize(json!(1.01)).is_err());
        assert!(BackoffFactor::deserialize(json!(0.9)).is_err());
        assert!(AnyPort::deserialize(json!(65536)).is_err());
        let e = NonNegative::deserialize(json!(-987654321)).unwrap_err().to_string();
        assert!(!e.contains("987654321"), "{e}");
    }
}
