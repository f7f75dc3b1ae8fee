//! Query strings with repeated keys (`embed=a&embed=b`, `event_type=x&event_type=y`),
//! which axum's `Query` extractor cannot express.

/// The decoded `key=value` pairs of a raw query string, in order.
pub(crate) fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|text| {
        form_urlencoded::parse(text.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    })
    .unwrap_or_default()
}

/// Every value given for `key`.
pub(crate) fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
}

/// The last value given for `key`.
pub(crate) fn last<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A boolean flag as the JVM servers parse it: `true` (any case) is true, anything
/// else false; absent gives `default`.
pub(crate) fn flag(pairs: &[(String, String)], key: &str, default: bool) -> bool {
    match last(pairs, key) {
        Some(value) => value.eq_ignore_ascii_case("true"),
        None => default,
    }
}
