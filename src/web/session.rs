//! The session cookie, its CSRF token, and one-time messages.
//!
//! The `paddock_session` cookie holds a random 32-byte secret ([`Token`]). A
//! visitor who has not signed in has a secret but no row anywhere: it anchors the
//! CSRF token of the sign-in and sign-up forms. Signing in starts a session in
//! PostgreSQL under the SHA-256 of a *new* secret; every signed-in request
//! presents the secret to the database, which decides who is asking (see
//! `db::identity`). The CSRF token is derived from the secret, so it needs no
//! storage and dies with the session.
//!
//! One-time messages ("Saved …") travel in a `paddock_flash` cookie for the next
//! page, MAC'd with the session secret so nobody else can plant one.
//!
//! After every sign-in the browser also gets a `paddock_device` cookie: the
//! database's proof that this browser has signed in to that account before,
//! which lets it sign in while others' failed guesses lock the account or the
//! address (see the migration `20261201400000_trusted_devices.sql`). It holds
//! up to five such entries, one per account, newest first.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::{error::AppError, state::AppState, token::Token};

/// The session cookie's name.
pub const COOKIE: &str = "paddock_session";
const FLASH_COOKIE: &str = "paddock_flash";
/// The device cookie's name.
pub const DEVICE_COOKIE: &str = "paddock_device";
/// Device entries kept per browser.
const MAX_DEVICES: usize = 5;
/// How long a browser keeps its device cookie: 400 days, the most browsers allow.
const DEVICE_MAX_AGE: u32 = 400 * 24 * 60 * 60;

/// Values kept until the next page shows them, once.
#[derive(Clone, Copy, Debug)]
pub enum Once {
    /// A confirmation, shown with `role="status"`.
    Status,
    /// A problem, shown with `role="alert"`.
    Alert,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Flash {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alert: Option<String>,
}

impl Flash {
    fn slot(&mut self, kind: Once) -> &mut Option<String> {
        match kind {
            Once::Status => &mut self.status,
            Once::Alert => &mut self.alert,
        }
    }

    fn is_empty(&self) -> bool {
        self.status.is_none() && self.alert.is_none()
    }
}

struct Inner {
    token: Token,
    /// Whether the browser sent this token (else it is new and must be set).
    from_browser: bool,
    replaced: bool,
    incoming: Flash,
    outgoing: Flash,
    /// The device cookie entries the browser presented.
    devices: Vec<String>,
}

/// The request's session, as a handler extractor.
#[derive(Clone)]
pub struct Session(Arc<Mutex<Inner>>);

impl Session {
    fn state(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The secret the browser presented, if it presented one.
    pub fn presented(&self) -> Option<Token> {
        let state = self.state();
        (state.from_browser && !state.replaced).then(|| state.token.clone())
    }

    /// This session's CSRF token: derived from the secret, safe to put in a page.
    pub fn csrf(&self) -> String {
        self.state().token.derive("paddock csrf v1")
    }

    /// Whether `candidate` is this session's CSRF token (constant-time comparison).
    pub fn csrf_matches(&self, candidate: &str) -> bool {
        orion::util::secure_cmp(self.csrf().as_bytes(), candidate.as_bytes()).is_ok()
    }

    /// Makes `token` this browser's secret from the response on: the secret of a
    /// session the database has just started (a new id at every sign-in).
    pub fn adopt(&self, token: Token) {
        let mut state = self.state();
        state.token = token;
        state.replaced = true;
    }

    /// The device cookie entries the browser presented (well-formed ones only).
    pub fn devices(&self) -> Vec<String> {
        self.state().devices.clone()
    }

    /// Gives the browser a fresh secret that opens nothing (after signing out).
    pub fn forget(&self) -> Result<(), AppError> {
        self.adopt(Token::generate().map_err(AppError::Internal)?);
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("route lacks the session layer")))
    }
}

/// Keeps `message` for the next page.
pub fn set_once(session: &Session, kind: Once, message: &str) {
    *session.state().outgoing.slot(kind) = Some(message.to_owned());
}

/// Takes the message kept for this page, if any.
pub fn take_once(session: &Session, kind: Once) -> Option<String> {
    session.state().incoming.slot(kind).take()
}

/// The middleware: reads the cookies, hands the handler a [`Session`], and sets
/// the cookies the handler changed. A message nobody took stays for the next page.
pub async fn layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let presented = cookie(request.headers(), COOKIE).and_then(Token::parse);
    let from_browser = presented.is_some();
    let token = match presented.map_or_else(Token::generate, Ok) {
        Ok(token) => token,
        Err(e) => return AppError::Internal(e).into_response(),
    };
    let incoming = cookie(request.headers(), FLASH_COOKIE)
        .and_then(|value| open_flash(&token, value))
        .unwrap_or_default();
    let session = Session(Arc::new(Mutex::new(Inner {
        token,
        from_browser,
        replaced: false,
        incoming: incoming.clone(),
        outgoing: Flash::default(),
        devices: devices_in(request.headers()),
    })));
    request.extensions_mut().insert(session.clone());

    let mut response = next.run(request).await;

    let secure = state.settings.secure_cookies;
    let device = remember_device(&state, &session).await;
    let inner = session.state();
    let headers = response.headers_mut();
    if let Some(value) = device {
        set_cookie(headers, DEVICE_COOKIE, &value, secure, Some(DEVICE_MAX_AGE));
    }
    // Every page here is personal or carries a form token: never cache it.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !inner.from_browser || inner.replaced {
        set_cookie(headers, COOKIE, &inner.token.expose_text(), secure, None);
    }
    let next_flash = Flash {
        status: inner
            .outgoing
            .status
            .clone()
            .or(inner.incoming.status.clone()),
        alert: inner
            .outgoing
            .alert
            .clone()
            .or(inner.incoming.alert.clone()),
    };
    if next_flash.is_empty() {
        if !incoming.is_empty() {
            set_cookie(headers, FLASH_COOKIE, "", secure, Some(0));
        }
    } else if next_flash != incoming || inner.replaced {
        let sealed = seal_flash(&inner.token, &next_flash);
        set_cookie(headers, FLASH_COOKIE, &sealed, secure, None);
    }
    drop(inner);
    response
}

/// After a sign-in (the session got a new secret): the device cookie with this
/// account's entry added, when the database mints one.
async fn remember_device(state: &AppState, session: &Session) -> Option<String> {
    let (token, devices) = {
        let inner = session.state();
        if !inner.replaced {
            return None;
        }
        (inner.token.clone(), inner.devices.clone())
    };
    match crate::db::identity::device_cookie(&state.pool, &token, &devices).await {
        Ok(Some(entry)) => {
            let kept = devices.iter().take(MAX_DEVICES - 1).map(String::as_str);
            Some(
                std::iter::once(entry.as_str())
                    .chain(kept)
                    .collect::<Vec<_>>()
                    .join("~"),
            )
        }
        Ok(None) => None,
        Err(e) => {
            // The sign-in itself succeeded; the browser is simply not remembered.
            tracing::warn!(error = %e, "could not remember this browser for sign-in throttling");
            None
        }
    }
}

/// The well-formed entries (`<32 hex>.<64 hex>`) of the device cookie.
fn devices_in(headers: &HeaderMap) -> Vec<String> {
    let well_formed = |entry: &&str| {
        entry.split_once('.').is_some_and(|(nonce, mac)| {
            nonce.len() == 32
                && mac.len() == 64
                && nonce
                    .chars()
                    .chain(mac.chars())
                    .all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        })
    };
    cookie(headers, DEVICE_COOKIE)
        .map(|value| {
            value
                .split('~')
                .filter(well_formed)
                .take(MAX_DEVICES)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    secure: bool,
    max_age: Option<u32>,
) {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}

fn flash_key(token: &Token) -> Option<orion::auth::SecretKey> {
    orion::auth::SecretKey::try_from(token.expose_bytes()).ok()
}

fn seal_flash(token: &Token, flash: &Flash) -> String {
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(flash).unwrap_or_default());
    let tag = flash_key(token)
        .and_then(|key| orion::auth::authenticate(&key, body.as_bytes()).ok())
        .map(|tag| URL_SAFE_NO_PAD.encode(tag.unprotected_as_ref()))
        .unwrap_or_default();
    format!("{body}.{tag}")
}

fn open_flash(token: &Token, value: &str) -> Option<Flash> {
    let (body, tag) = value.split_once('.')?;
    let tag = orion::auth::Tag::try_from(URL_SAFE_NO_PAD.decode(tag).ok()?.as_slice()).ok()?;
    orion::auth::authenticate_verify(&tag, &flash_key(token)?, body.as_bytes()).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_opens_only_with_the_session_that_sealed_it() {
        let mine = Token::generate().expect("token");
        let theirs = Token::generate().expect("token");
        let flash = Flash {
            status: Some("Saved “Main”.".into()),
            alert: None,
        };
        let sealed = seal_flash(&mine, &flash);
        assert_eq!(open_flash(&mine, &sealed), Some(flash));
        assert_eq!(open_flash(&theirs, &sealed), None);
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alert":"Your keys leaked, call us"}"#),
            sealed.split_once('.').expect("tag").1
        );
        assert_eq!(open_flash(&mine, &forged), None);
    }

    #[test]
    fn only_well_formed_device_entries_are_read() {
        let good = format!("{}.{}", "a".repeat(32), "0".repeat(64));
        let other = format!("{}.{}", "b".repeat(32), "1".repeat(64));
        let mut headers = HeaderMap::new();
        let value = format!(
            "paddock_device={good}~junk~{}.{}~{other}",
            "A".repeat(32),
            "0".repeat(64)
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&value).expect("value"),
        );
        assert_eq!(devices_in(&headers), [good.clone(), other]);
        let many = [good.as_str(); 9].join("~");
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("paddock_device={many}")).expect("value"),
        );
        assert_eq!(devices_in(&headers).len(), MAX_DEVICES);
        assert!(devices_in(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; paddock_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
