//! Errors returned by the Alpaca client, with member-facing messages.
//!
//! Errors never carry key material: keys travel only in (sensitive) headers,
//! and the details kept for logging are status codes, Alpaca's own error
//! message, or transport errors (which name URLs, never headers).

/// What a member reads when Alpaca's answer cannot be read at all.
pub const UNREADABLE: &str = "Alpaca sent a response Paddock could not read";

/// Longest piece of an error body kept in an error.
const MAX_BODY_CHARS: usize = 200;

/// An Alpaca API failure.
#[derive(Debug, thiserror::Error)]
pub enum AlpacaError {
    /// 401, or 403 on a read: the keys are wrong, revoked, or for the other
    /// environment.
    #[error("alpaca rejected the credentials")]
    Rejected,
    /// 429.
    #[error("alpaca rate limit exceeded")]
    RateLimited,
    /// 5xx, timeout or connection failure. The
    /// string is a detail for logs.
    #[error("alpaca unavailable: {0}")]
    Unavailable(String),
    /// A success answer whose body Paddock cannot read at all: not JSON, the
    /// wrong shape, or larger than the size cap. Retrying will not help. The
    /// string is a detail for logs.
    #[error("alpaca sent an unreadable body: {0}")]
    Unreadable(String),
    /// 404.
    #[error("alpaca could not find the resource")]
    NotFound,
    /// 422 (or another 4xx on a write), with Alpaca's message.
    #[error("alpaca rejected the request: {0}")]
    Unprocessable(String),
    /// 403 on an order placement or cancellation (e.g. insufficient buying
    /// power), with Alpaca's message.
    #[error("alpaca refused the order: {0}")]
    Refused(String),
}

impl AlpacaError {
    /// Text safe to show to the member.
    pub fn user_message(&self) -> String {
        match self {
            AlpacaError::Rejected => "Alpaca rejected these keys".to_owned(),
            AlpacaError::RateLimited => {
                "Alpaca is rate-limiting this account, try again shortly".to_owned()
            }
            AlpacaError::Unavailable(_) => "Alpaca is unavailable right now".to_owned(),
            AlpacaError::Unreadable(_) => UNREADABLE.to_owned(),
            AlpacaError::NotFound => "Alpaca could not find that".to_owned(),
            AlpacaError::Unprocessable(message) | AlpacaError::Refused(message) => {
                format!("Alpaca refused the order: {message}")
            }
        }
    }

    /// Short stable name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AlpacaError::Rejected => "rejected",
            AlpacaError::RateLimited => "rate_limited",
            AlpacaError::Unavailable(_) => "unavailable",
            AlpacaError::Unreadable(_) => "unreadable",
            AlpacaError::NotFound => "not_found",
            AlpacaError::Unprocessable(_) => "unprocessable",
            AlpacaError::Refused(_) => "refused",
        }
    }

    /// Maps a non-success HTTP status and its body to an error. `write` is
    /// true for order placement/cancellation, where 403 means Alpaca refused
    /// the order rather than the keys.
    pub fn from_response(status: u16, body: &str, write: bool) -> Self {
        match status {
            401 => AlpacaError::Rejected,
            403 if write => AlpacaError::Refused(error_message(body)),
            403 => AlpacaError::Rejected,
            404 => AlpacaError::NotFound,
            422 => AlpacaError::Unprocessable(error_message(body)),
            429 => AlpacaError::RateLimited,
            400..=499 if write => AlpacaError::Unprocessable(error_message(body)),
            _ => AlpacaError::Unavailable(format!("HTTP status {status}")),
        }
    }
}

/// Extracts a human-readable message from an Alpaca error body, leniently:
/// `{"code":..,"message":".."}`, `{"message":".."}`, or plain text (trimmed
/// and truncated to about 200 characters).
pub fn error_message(body: &str) -> String {
    let trimmed = body.trim();
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(trimmed) {
        for field in ["message", "msg", "error"] {
            if let Some(serde_json::Value::String(m)) = map.get(field) {
                return truncate(m.trim());
            }
        }
    }
    if trimmed.is_empty() {
        return "no details given".to_owned();
    }
    truncate(trimmed)
}

fn truncate(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_BODY_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_code_and_message() {
        let body = r#"{"code":40310000,"message":"insufficient buying power"}"#;
        assert_eq!(error_message(body), "insufficient buying power");
        let e = AlpacaError::from_response(403, body, true);
        assert!(matches!(e, AlpacaError::Refused(ref m) if m == "insufficient buying power"));
        assert_eq!(
            e.user_message(),
            "Alpaca refused the order: insufficient buying power"
        );
    }

    #[test]
    fn parses_message_only() {
        assert_eq!(error_message(r#"{"message":"forbidden"}"#), "forbidden");
        let e = AlpacaError::from_response(422, r#"{"message":"qty must be > 0"}"#, true);
        assert_eq!(
            e.user_message(),
            "Alpaca refused the order: qty must be > 0"
        );
    }

    #[test]
    fn parses_plain_text_and_truncates() {
        assert_eq!(error_message("  bad gateway \n"), "bad gateway");
        let long = "x".repeat(500);
        let m = error_message(&long);
        assert_eq!(m.chars().count(), MAX_BODY_CHARS + 1);
        assert_eq!(error_message(""), "no details given");
        // JSON that is not an object with a message is treated as text.
        assert_eq!(error_message("[1,2]"), "[1,2]");
    }

    #[test]
    fn status_mapping_and_messages() {
        assert!(matches!(
            AlpacaError::from_response(401, "", false),
            AlpacaError::Rejected
        ));
        assert!(matches!(
            AlpacaError::from_response(403, "{}", false),
            AlpacaError::Rejected
        ));
        assert!(matches!(
            AlpacaError::from_response(429, "", false),
            AlpacaError::RateLimited
        ));
        assert!(matches!(
            AlpacaError::from_response(503, "", false),
            AlpacaError::Unavailable(_)
        ));
        assert!(matches!(
            AlpacaError::from_response(404, "", true),
            AlpacaError::NotFound
        ));
        assert_eq!(
            AlpacaError::Rejected.user_message(),
            "Alpaca rejected these keys"
        );
        assert_eq!(
            AlpacaError::RateLimited.user_message(),
            "Alpaca is rate-limiting this account, try again shortly"
        );
        assert_eq!(
            AlpacaError::Unavailable(String::new()).user_message(),
            "Alpaca is unavailable right now"
        );
        assert_eq!(
            AlpacaError::NotFound.user_message(),
            "Alpaca could not find that"
        );
        assert_eq!(AlpacaError::RateLimited.kind(), "rate_limited");
        assert_eq!(
            AlpacaError::Unreadable("expected value at line 1".into()).user_message(),
            "Alpaca sent a response Paddock could not read"
        );
    }
}
