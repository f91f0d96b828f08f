//! `/login/2fa`: the second step of signing in, for members with a second factor.
//!
//! The session is half signed in: its secret opens nothing but this page for five
//! minutes. A right code (or recovery code, or passkey) makes the database start
//! a signed-in session under a new secret; guesses are throttled like passwords.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    attest,
    db::{
        self,
        account::{Pending, Proof},
        identity::Attempt,
    },
    error::AppError,
    state::AppState,
    token::Token,
    totp,
    web::{
        extract::Form,
        forms::{self, FieldErrors},
        passkeys::{self as passkey, AnswerForm, relying_party},
        service::{SealedTotp, address_subject, too_many, totp_proof},
        session::Session,
        tenant::ClientOrigin,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "auth/second_factor.html")]
struct SecondFactorPage {
    csrf: String,
    totp: bool,
    has_passkey: bool,
    errors: FieldErrors,
    alert: Option<String>,
}

impl SecondFactorPage {
    fn of(session: &Session, pending: &Pending) -> Self {
        Self {
            csrf: session.csrf(),
            totp: pending.sealed_totp_secret.is_some(),
            has_passkey: pending.passkeys > 0,
            errors: FieldErrors::default(),
            alert: None,
        }
    }
}

/// The pending session this browser holds, if any.
async fn pending(
    state: &AppState,
    session: &Session,
) -> Result<Option<(Token, Pending)>, AppError> {
    let Some(token) = session.presented() else {
        return Ok(None);
    };
    Ok(db::account::pending(&state.pool, &token)
        .await?
        .map(|p| (token, p)))
}

/// `GET /login/2fa`.
pub async fn show(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    match pending(&state, &session).await? {
        Some((_, pending)) => Ok(SecondFactorPage::of(&session, &pending).into_response()),
        None => Ok(Redirect::to("/login").into_response()),
    }
}

/// The code as posted.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /login/2fa`: a TOTP code or a recovery code.
pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let Some((token, pending)) = pending(&state, &session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let mut page = SecondFactorPage::of(&session, &pending);
    let code = forms::text(&mut page.errors, "code", &form.code, 64);
    if code.is_empty() {
        page.errors.add(
            "code",
            "Enter the 6-digit code from your app, or a recovery code.",
        );
    }
    if !page.errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let address = address_subject(&origin);
    let attempts = match db::account::second_factor_attempt(&state.pool, &token, &address).await? {
        None => return Ok(Redirect::to("/login").into_response()),
        Some(Attempt::Locked { retry_after }) => {
            crate::metrics::sign_in("locked");
            page.alert = Some("Too many wrong codes. Wait a few minutes, then try again.".into());
            return Ok(too_many(page.into_response(), retry_after));
        }
        Some(Attempt::Counted { ids, .. }) => ids,
    };
    let token_hash = attest::hex(&token.sha256());
    let proof = if totp::looks_like_recovery_code(&code) {
        Some(Proof::Recovery(&code))
    } else {
        match &pending.sealed_totp_secret {
            Some(sealed) => totp_proof(
                &state,
                &SealedTotp {
                    organization: pending.organization_id,
                    member: pending.member_id,
                    sealed,
                    last_used_step: pending.last_used_step,
                },
                &code,
                &format!("second_factor:{token_hash}"),
            )?,
            None => None,
        }
    };
    let new_token = Token::generate()?;
    let done = db::account::complete_second_factor(
        &state.pool,
        &token,
        &new_token,
        &attempts,
        &proof.unwrap_or(Proof::Wrong),
        &address,
        &origin,
    )
    .await?;
    crate::metrics::sign_in(if done { "success" } else { "failure" });
    if !done {
        page.alert = Some(
            "That code is not right, or it was used already. Try the newest code from your app."
                .into(),
        );
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    session.adopt(new_token);
    Ok(Redirect::to("/portfolio").into_response())
}

/// `POST /login/2fa/passkey/options`: the options to sign in with one of the
/// member's passkeys; the challenge is kept with the pending session.
pub async fn passkey_options(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, AppError> {
    let passkeys = relying_party(&state)?;
    let Some((token, _)) = pending(&state, &session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let stored = db::passkeys::pending(&state.pool, &token).await?;
    if stored.is_empty() {
        return Ok(passkey::refusal(
            StatusCode::CONFLICT,
            "This account has no passkey. Enter a code instead.",
        ));
    }
    let started = passkeys.start_authentication(&stored)?;
    let subject = attest::hex(&token.sha256());
    let attestation = passkey::ceremony_attestation(&state, &subject, "second_factor", &started);
    if !db::passkeys::begin_pending(&state.pool, &token, &started.state, &attestation).await? {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(passkey::options(started))
}

/// `POST /login/2fa/passkey`: the browser's answer, checked against the kept
/// challenge and the member's passkeys; counted like a code.
pub async fn passkey(
    State(state): State<AppState>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    Form(form): Form<AnswerForm>,
) -> Result<Response, AppError> {
    let Some((token, pending)) = pending(&state, &session).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let mut page = SecondFactorPage::of(&session, &pending);
    let passkeys = relying_party(&state)?;
    if form.is_empty() {
        page.alert = Some(passkey::NEEDS_JAVASCRIPT.into());
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let Some(ceremony) = db::passkeys::take_pending(&state.pool, &token).await? else {
        page.alert = Some(passkey::EXPIRED.into());
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let address = address_subject(&origin);
    let attempts = match db::account::second_factor_attempt(&state.pool, &token, &address).await? {
        None => return Ok(Redirect::to("/login").into_response()),
        Some(Attempt::Locked { retry_after }) => {
            crate::metrics::sign_in("locked");
            page.alert =
                Some("Too many failed attempts. Wait a few minutes, then try again.".into());
            return Ok(too_many(page.into_response(), retry_after));
        }
        Some(Attempt::Counted { ids, .. }) => ids,
    };
    let stored = db::passkeys::pending(&state.pool, &token).await?;
    let asserted = passkeys
        .finish_authentication(&form.credential, &ceremony, &stored)
        .inspect_err(|e| passkey::log_refusal("a passkey at sign-in", e))
        .ok();
    let context = format!("second_factor:{}", attest::hex(&token.sha256()));
    let proof = asserted
        .as_ref()
        .map_or(Proof::Wrong, |a| passkey::proof(&state, &context, a));
    let new_token = Token::generate()?;
    let done = db::account::complete_second_factor(
        &state.pool,
        &token,
        &new_token,
        &attempts,
        &proof,
        &address,
        &origin,
    )
    .await?;
    crate::metrics::sign_in(if done { "success" } else { "failure" });
    let Some(asserted) = asserted.filter(|_| done) else {
        page.alert = Some(if pending.sealed_totp_secret.is_some() {
            "That passkey could not be verified. Try it again, or enter a code.".into()
        } else {
            "That passkey could not be verified. Try it again.".into()
        });
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    passkey::record_use_after_sign_in(&state, &new_token, &asserted).await;
    session.adopt(new_token);
    Ok(Redirect::to("/portfolio").into_response())
}
