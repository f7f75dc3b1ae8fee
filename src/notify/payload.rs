//! Event → request body, pure: the generic JSON event, the Slack-compatible message,
//! and the HMAC signature header.
//!
//! Nothing here sees a secret value: events are made from reconcile reports, whose
//! error texts are masked where they are made (`diff::mask`); URL userinfo is redacted
//! once more here, and the number of objects listed is capped.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::event::{Event, Severity};
use super::target::SigningKey;
use crate::diff::mask::redact_userinfo;

/// The header carrying `sha256=<hex HMAC-SHA256(key, body)>` (Flux's generic-hmac form,
/// which `mesosync run`'s own push receiver accepts too).
pub const SIGNATURE_HEADER: &str = "X-Signature";
/// Objects named in one chat message.
pub const MAX_CHAT_OBJECTS: usize = 10;
/// Longest message or object detail kept (a long server error is cut).
pub const MAX_TEXT: usize = 2000;

fn clip(text: &str) -> String {
    let text = redact_userinfo(text);
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The generic JSON body:
/// `{"source", "event", "severity", "message", "revision", "objects", "objects_total", "reconcile", "timestamp"}`.
pub fn generic(event: &Event) -> Vec<u8> {
    let objects: Vec<_> = event
        .objects
        .iter()
        .map(|o| json!({"kind": o.kind, "id": o.id, "detail": clip(&o.detail)}))
        .collect();
    let body = json!({
        "source": "mesosync",
        "event": event.kind.name(),
        "severity": event.severity,
        "message": clip(&event.message),
        "revision": event.revision.as_ref().map(|r| json!({"commit": r.commit, "dirty": r.dirty})),
        "objects": objects,
        "objects_total": event.objects_total,
        "reconcile": event.reconcile,
        "timestamp": event.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    serde_json::to_vec(&body).expect("JSON values always serialize")
}

/// Slack's incoming-webhook body, `{"text": …}` (Mattermost and Rocket.Chat read the
/// same): one short line, then the objects touched, at most [`MAX_CHAT_OBJECTS`].
pub fn slack(event: &Event) -> Vec<u8> {
    let icon = match event.severity {
        Severity::Info => ":white_check_mark:",
        Severity::Warning => ":warning:",
        Severity::Error => ":x:",
    };
    let mut text = format!("{icon} *mesosync* {}", escape(&clip(&event.message)));
    for o in event.objects.iter().take(MAX_CHAT_OBJECTS) {
        text.push_str(&format!("\n• {} `{}` {}", o.kind, escape(&o.id), escape(&clip(&o.detail))));
    }
    if event.objects_total > MAX_CHAT_OBJECTS {
        text.push_str(&format!("\n… and {} more", event.objects_total - MAX_CHAT_OBJECTS));
    }
    serde_json::to_vec(&json!({ "text": text })).expect("JSON values always serialize")
}

/// Slack's three control characters (`&`, `<`, `>`), so no text becomes a mention or a link.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `sha256=<hex HMAC-SHA256(key, body)>`.
pub fn signature(key: &SigningKey, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use serde_json::Value;

    use super::*;
    use crate::notify::event::{EventKind, EventObject, MAX_OBJECTS};
    use crate::status::GitRevision;

    fn event(objects: usize) -> Event {
        Event {
            kind: EventKind::Applied,
            severity: Severity::Info,
            message: "applied 2 writes at abc1234 via https://u:pw@git.example/x".into(),
            revision: Some(GitRevision { commit: "abc1234def".into(), dirty: false }),
            objects: (0..objects.min(MAX_OBJECTS))
                .map(|i| EventObject { kind: "app", id: format!("/a/{i}"), detail: "update".into() })
                .collect(),
            objects_total: objects,
            reconcile: Some(7),
            timestamp: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn the_generic_body_has_every_field() {
        let body: Value = serde_json::from_slice(&generic(&event(2))).unwrap();
        assert_eq!(body["event"], "applied");
        assert_eq!(body["severity"], "info");
        assert_eq!(body["revision"], json!({"commit": "abc1234def", "dirty": false}));
        assert_eq!(body["objects"][1], json!({"kind": "app", "id": "/a/1", "detail": "update"}));
        assert_eq!(body["objects_total"], 2);
        assert_eq!(body["reconcile"], 7);
        assert_eq!(body["timestamp"], "2027-01-15T08:00:00.000Z");
        assert_eq!(body["message"], "applied 2 writes at abc1234 via https://***@git.example/x");
        let many: Value = serde_json::from_slice(&generic(&event(MAX_OBJECTS + 5))).unwrap();
        assert_eq!(
            (many["objects"].as_array().unwrap().len(), many["objects_total"].as_u64()),
            (MAX_OBJECTS, Some(105))
        );
    }

    #[test]
    fn the_chat_message_is_short_and_escaped() {
        let mut e = event(MAX_CHAT_OBJECTS + 2);
        e.objects[0].id = "/<!channel>".into();
        let body: Value = serde_json::from_slice(&slack(&e)).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with(":white_check_mark: *mesosync* applied 2 writes at abc1234"), "{text}");
        assert!(text.contains("• app `/&lt;!channel&gt;` update"), "{text}");
        assert!(text.ends_with("… and 2 more"), "{text}");
        assert_eq!(text.lines().count(), 1 + MAX_CHAT_OBJECTS + 1);
    }

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // GitHub's documented example ("Validating webhook deliveries").
        let key = SigningKey(b"It's a Secret to Everybody".to_vec());
        assert_eq!(
            signature(&key, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn long_texts_are_cut() {
        let mut e = event(1);
        e.message = "é".repeat(MAX_TEXT);
        let body: Value = serde_json::from_slice(&generic(&e)).unwrap();
        assert!(body["message"].as_str().unwrap().len() <= MAX_TEXT + "…".len());
    }
}
