//! Both servers are JAX-RS resources that consume `application/json`: a write whose
//! `Content-Type` names something else (say curl's default form encoding) is refused
//! with 415 before the body is read. A write without the header is accepted.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Refuse POST/PUT/PATCH bodies that declare a non-JSON media type.
pub(crate) async fn require_json(request: Request, next: Next) -> Response {
    let writes = [Method::POST, Method::PUT, Method::PATCH].contains(request.method());
    let declared = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if writes && !request.uri().path().starts_with("/_sandbox") {
        if let Some(media) = declared {
            let essence = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            if essence != "application/json" && !essence.ends_with("+json") {
                return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
            }
        }
    }
    next.run(request).await
}

/// The variant JAX-RS's `Request.selectVariant` picks for an `Accept` header: the
/// accepted media ranges by quality (then specificity, then header order), and for
/// each the first compatible variant. No header means `*/*`; `None` when nothing fits.
pub(crate) fn select_variant<'a>(accept: Option<&str>, variants: &[&'a str]) -> Option<&'a str> {
    let mut ranges: Vec<(String, f32, u8)> = accept
        .unwrap_or("*/*")
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let specificity = match range.split_once('/') {
                Some(("*", _)) => 0,
                Some((_, "*")) => 1,
                Some(_) => 2,
                None => return None,
            };
            (quality > 0.0).then_some((range, quality, specificity))
        })
        .collect();
    ranges.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)));
    ranges.iter().find_map(|(range, _, _)| variants.iter().copied().find(|v| compatible(range, v)))
}

/// JAX-RS `MediaType.isCompatible`: equal, or a wildcard on either side.
fn compatible(a: &str, b: &str) -> bool {
    let (a_type, a_sub) = a.split_once('/').unwrap_or((a, "*"));
    let (b_type, b_sub) = b.split_once('/').unwrap_or((b, "*"));
    let part = |x: &str, y: &str| x == "*" || y == "*" || x == y;
    part(a_type, b_type) && part(a_sub, b_sub)
}

#[cfg(test)]
mod tests {
    use super::select_variant;

    const PING: [&str; 4] = ["text/plain", "text/html", "application/json", "text/*"];

    #[test]
    fn variants_are_chosen_like_jax_rs() {
        assert_eq!(select_variant(None, &PING), Some("text/plain"));
        assert_eq!(select_variant(Some("application/json"), &PING), Some("application/json"));
        assert_eq!(
            select_variant(Some("application/json, text/plain, */*"), &PING),
            Some("application/json")
        );
        assert_eq!(
            select_variant(Some("text/plain;q=0.5, application/json"), &PING),
            Some("application/json")
        );
        assert_eq!(select_variant(Some("text/csv"), &PING), Some("text/*"));
        assert_eq!(select_variant(Some("application/xml"), &PING), None);
        assert_eq!(select_variant(Some("*/*"), &PING), Some("text/plain"));
    }
}
