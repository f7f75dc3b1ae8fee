//! Reading answers: long-lived streaming responses (Marathon's event stream) and whole
//! bodies gathered into one buffer.

use super::{HttpClient, Request};
use crate::client::error::ClientError;

impl HttpClient {
    /// Open a long-lived streaming response (no request timeout; failover applies,
    /// retries are the caller's business). Non-2xx answers become errors.
    pub async fn open_stream(
        &self,
        req: &Request<'_>,
        accept: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let resp = self.send_once_with(req, None, Some(accept)).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Err(self.api_error(req, status, &body))
    }
}

/// The whole body, in one buffer sized from `Content-Length` when given: a listing
/// of 10,000 apps is ~14 MB, and gathering it in chunks and then copying them into
/// one buffer held it twice (and left thousands of chunk allocations behind).
pub(super) async fn read_body(mut resp: reqwest::Response) -> Result<bytes::Bytes, reqwest::Error> {
    // A server's length is a hint, not a promise: cap what is reserved up front.
    const MAX_RESERVE: u64 = 256 << 20;
    let hint = resp.content_length().unwrap_or(0).min(MAX_RESERVE);
    let mut body = bytes::BytesMut::with_capacity(usize::try_from(hint).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
