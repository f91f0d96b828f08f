//! What the passkey handlers share: the relying party, the attestations that
//! vouch to the database for ceremony states and verified passkeys, and the
//! JSON the one script (`static/paddock.js`) reads.
//!
//! Only the start of a ceremony answers JSON (the options for
//! `navigator.credentials`); the browser's answer comes back in an ordinary form
//! post, next to the CSRF token, and gets an ordinary page.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    attest::{digest, hex},
    db::{self, account::Proof},
    error::AppError,
    passkey::{Asserted, Passkeys, Started},
    state::AppState,
    web::tenant::Tx,
};

/// The browser's answer, posted by the script as a form field.
#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    pub credential: String,
    #[serde(default)]
    pub next: String,
}

impl AnswerForm {
    /// Whether the form came without an answer (JavaScript is off).
    pub fn is_empty(&self) -> bool {
        self.credential.trim().is_empty()
    }
}

/// Shown when a passkey form is posted without the script's answer.
pub const NEEDS_JAVASCRIPT: &str =
    "Using a passkey needs JavaScript, which is off in this browser.";

/// Shown when the ceremony's state is gone (taken, expired, or never begun).
pub const EXPIRED: &str = "That took too long, or was already used. Try the passkey again.";

/// The relying party, or 404 when passkeys are unavailable on this server.
pub fn relying_party(state: &AppState) -> Result<&Passkeys, AppError> {
    state.settings.passkeys.as_ref().ok_or(AppError::NotFound)
}

/// The attestation under which the database keeps a ceremony's state:
/// `passkey_ceremony:{subject}:{purpose}:{hex sha256 of the state}`.
pub fn ceremony_attestation(
    state: &AppState,
    subject: &str,
    purpose: &str,
    started: &Started,
) -> Vec<u8> {
    state.attestor.attest(&format!(
        "passkey_ceremony:{subject}:{purpose}:{}",
        hex(&digest(started.state.as_bytes()))
    ))
}

/// The proof of a verified passkey for `{context}:passkey:{counter}`.
pub fn proof(state: &AppState, context: &str, asserted: &Asserted) -> Proof<'static> {
    let step = i64::from(asserted.counter);
    Proof::Passkey {
        step,
        attestation: state.attestor.attest(&format!("{context}:passkey:{step}")),
    }
}

/// Stores the passkey's advanced counter and the time it was used, for the
/// session `session` (the current identity of `conn`).
pub async fn record_use(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    session: Uuid,
    asserted: &Asserted,
) -> Result<(), AppError> {
    let attestation = state.attestor.attest(&format!(
        "passkey_used:{session}:{}:{}",
        hex(&asserted.credential_id),
        hex(&digest(asserted.passkey.as_bytes()))
    ));
    if !db::passkeys::used(
        conn,
        &asserted.credential_id,
        &asserted.passkey,
        &attestation,
    )
    .await?
    {
        tracing::warn!("a verified passkey's use was not recorded");
    }
    Ok(())
}

/// Records the use from a fresh transaction of the just-signed-in session; a
/// failure is logged, never undoes the sign-in.
pub async fn record_use_after_sign_in(
    state: &AppState,
    token: &crate::token::Token,
    asserted: &Asserted,
) {
    let recorded = async {
        let Some((mut tx, identity)) = db::identity::begin_request(&state.pool, token).await?
        else {
            return Ok(());
        };
        record_use(state, &mut tx, identity.session_id, asserted).await?;
        tx.commit().await?;
        Ok::<_, AppError>(())
    };
    if let Err(e) = recorded.await {
        tracing::warn!(error = %e, "recording a passkey's use failed");
    }
}

/// Starts a ceremony of the signed-in session on its transaction: stores the
/// attested state, answers the options.
pub async fn begin(
    state: &AppState,
    tx: &mut Tx,
    session: Uuid,
    purpose: db::passkeys::Purpose,
    started: Started,
) -> Result<Response, AppError> {
    let attestation = ceremony_attestation(state, &session.to_string(), purpose.as_str(), &started);
    if !db::passkeys::begin(tx, purpose, &started.state, &attestation).await? {
        return Err(AppError::Internal(anyhow::anyhow!(
            "the database refused a passkey ceremony"
        )));
    }
    Ok(options(started))
}

/// The options for `navigator.credentials`, as JSON nobody caches.
pub fn options(started: Started) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        started.options,
    )
        .into_response()
}

/// A refusal the script shows as it is.
pub fn refusal(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// Logs why a browser's answer was refused (never shown: it may name internals).
pub fn log_refusal(what: &str, e: &crate::passkey::Refused) {
    tracing::info!(reason = %e, "{what} was refused");
}
