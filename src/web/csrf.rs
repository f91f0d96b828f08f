//! Refuses state-changing requests that are cross-site or lack the session's token.
//!
//! Every form carries a hidden `csrf_token` bound to the session (synchronizer
//! token). Browsers also tell us where a request came from (`Sec-Fetch-Site`,
//! `Origin`); cross-site POSTs are refused before the body is read. With
//! `PADDOCK_PUBLIC_URL` set, `Origin` must be exactly that origin; without it,
//! `Origin` must name the request's own `Host`.

use crate::{config::PublicUrl, error::AppError, state::AppState, web::session::Session};
use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Largest form body accepted.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The middleware.
pub async fn guard(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    if is_cross_site(request.headers(), state.settings.public_url.as_ref()) {
        tracing::warn!("refused a cross-site POST");
        return AppError::Forbidden.into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    // Only the token is copied out; the other fields (passwords, API keys) are
    // not decoded into fresh strings here.
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.into_owned());
    match token {
        Some(token) if session.csrf_matches(&token) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => {
            tracing::warn!("refused a POST without a valid CSRF token");
            AppError::Forbidden.into_response()
        }
    }
}

fn is_cross_site(headers: &HeaderMap, public_url: Option<&PublicUrl>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"));
    if let (Some(url), Some(origin)) = (public_url, origin) {
        return !url.is_origin(origin);
    }
    match (
        origin,
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or(origin);
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_posts_pass_and_cross_site_ones_do_not() {
        let cross = |pairs| is_cross_site(&headers(pairs), None);
        assert!(!cross(&[]));
        assert!(!cross(&[("sec-fetch-site", "same-origin")]));
        assert!(!cross(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ]));
        assert!(cross(&[("sec-fetch-site", "cross-site")]));
        assert!(cross(&[("sec-fetch-site", "same-site")]));
        assert!(cross(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8080")
        ]));
        assert!(cross(&[("origin", "null"), ("host", "127.0.0.1:8080")]));
    }

    #[test]
    fn behind_a_proxy_only_the_public_origin_may_post() {
        let url = PublicUrl::parse("https://paddock.example.org").expect("url");
        let cross = |pairs| is_cross_site(&headers(pairs), Some(&url));
        // The proxy talks to us on another host name; the browser's origin counts.
        assert!(!cross(&[
            ("origin", "https://paddock.example.org"),
            ("host", "127.0.0.1:8080")
        ]));
        assert!(!cross(&[("host", "paddock.example.org")]), "no Origin sent");
        assert!(cross(&[
            ("origin", "http://paddock.example.org"),
            ("host", "paddock.example.org")
        ]));
        assert!(cross(&[
            ("origin", "https://evil.example"),
            ("host", "evil.example")
        ]));
        assert!(cross(&[
            ("origin", "null"),
            ("host", "paddock.example.org")
        ]));
    }
}
