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
