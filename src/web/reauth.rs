//! `/reauth`, "Confirm it's you": step-up before actions that need a sign-in
//! from the last 10 minutes. Returns to `next`, a path on this site only.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{
    db::{self, account::Proof, identity::Attempt, passkeys::Purpose},
    error::AppError,
    state::AppState,
    totp,
    web::{
        extract::Form,
        forms::{self, FieldErrors},
        passkeys::{self as passkey, AnswerForm, relying_party},
        service::{Guess, SealedTotp, address_subject, guess, local_path, too_many, totp_proof},
        session::Session,
        tenant::{Ctx, Tx},
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "auth/reauth.html")]
pub struct ReauthPage {
    ctx: Ctx,
    next: String,
    errors: FieldErrors,
    alert: Option<String>,
}

/// Where to go afterwards.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn next_or_default(next: Option<&str>) -> String {
    next.and_then(local_path).unwrap_or("/portfolio").to_owned()
}

/// `GET /reauth?next=…`.
pub async fn show(ctx: Ctx, Query(query): Query<NextQuery>) -> ReauthPage {
    ReauthPage {
        ctx,
        next: next_or_default(query.next.as_deref()),
        errors: FieldErrors::default(),
        alert: None,
    }
}

/// The form as posted.
#[derive(Deserialize)]
pub struct ReauthForm {
    #[serde(default)]
    password: SecretString,
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: String,
}

/// `POST /reauth`: the password, and the second factor when TOTP is on.
pub async fn confirm(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Form(form): Form<ReauthForm>,
) -> Result<Response, AppError> {
    let next = next_or_default(Some(&form.next));
    let mut errors = FieldErrors::default();
    if form.password.expose_secret().is_empty() {
        errors.add("password", "Enter your password.");
    }
    let code = forms::text(&mut errors, "code", &form.code, 64);
    if ctx.second_factors.totp && code.is_empty() {
        errors.add(
            "code",
            "Enter the 6-digit code from your app, or a recovery code.",
        );
    }
    let totp = if ctx.second_factors.totp {
        db::account::totp(&mut tx).await?
    } else {
        None
    };
    let page = |ctx: Ctx, errors: FieldErrors, alert: Option<&str>| ReauthPage {
        ctx,
        next: next.clone(),
        errors,
        alert: alert.map(str::to_owned),
    };
    if !errors.is_empty() {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page(ctx, errors, None)).into_response());
    }
    // The password's Argon2id runs with no transaction held.
    let released = tx.release().await?;
    let address = address_subject(&ctx.origin);
    let (derived, attempts) = match guess(
        &state,
        &ctx.member.email,
        &address,
        &session.devices(),
        form.password,
    )
    .await?
    {
        Guess::Locked(retry_after) => {
            let alert = "Too many failed attempts. Wait a few minutes, then try again.";
            return Ok(too_many(
                page(ctx, errors, Some(alert)).into_response(),
                retry_after,
            ));
        }
        Guess::Counted { derived, attempts } => (derived, attempts),
    };
    let proof = match &totp {
        Some(totp) if totp.enabled => Some(if totp::looks_like_recovery_code(&code) {
            Proof::Recovery(&code)
        } else {
            totp_proof(
                &state,
                &SealedTotp {
                    organization: ctx.member.organization_id,
                    member: ctx.member.id,
                    sealed: &totp.sealed_secret,
                    last_used_step: totp.last_used_step,
                },
                &code,
                &format!("reauthenticate:{}", ctx.session_id),
            )?
            .unwrap_or(Proof::Wrong)
        }),
        _ => None,
    };
    let mut tx = released.begin().await?;
    let confirmed =
        db::account::reauthenticate(&mut tx, &derived, &attempts, proof.as_ref(), &ctx.origin)
            .await?;
    if !confirmed {
        // Keep the recorded failure: commit before answering 401.
        tx.release().await?;
        let alert = "That did not match. Check your password and code, then try again.";
        return Ok((StatusCode::UNAUTHORIZED, page(ctx, errors, Some(alert))).into_response());
    }
    Ok(Redirect::to(&next).into_response())
}

/// The page again with `alert`, answered with `status`.
fn with_alert(ctx: Ctx, next: String, status: StatusCode, alert: &str) -> Response {
    let page = ReauthPage {
        ctx,
        next,
        errors: FieldErrors::default(),
        alert: Some(alert.to_owned()),
    };
    (status, page).into_response()
}

/// `POST /reauth/passkey/options`: the options to confirm with one of the
/// member's passkeys; the challenge is kept with this session.
pub async fn passkey_options(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
) -> Result<Response, AppError> {
    let passkeys = relying_party(&state)?;
    let stored = db::passkeys::stored(&mut tx).await?;
    if stored.is_empty() {
        return Ok(passkey::refusal(
            StatusCode::CONFLICT,
            "You have no passkey. Confirm with your password instead.",
        ));
    }
    let started = passkeys.start_authentication(&stored)?;
    passkey::begin(
        &state,
        &mut tx,
        ctx.session_id,
        Purpose::Reauthenticate,
        started,
    )
    .await
}

/// `POST /reauth/passkey`: the browser's answer; a passkey alone confirms it's
/// you. Counted against the throttle like a password.
pub async fn passkey(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Form(form): Form<AnswerForm>,
) -> Result<Response, AppError> {
    let next = next_or_default(Some(&form.next));
    let passkeys = relying_party(&state)?;
    if form.is_empty() {
        let alert = passkey::NEEDS_JAVASCRIPT;
        return Ok(with_alert(
            ctx,
            next,
            StatusCode::UNPROCESSABLE_ENTITY,
            alert,
        ));
    }
    let Some(ceremony) = db::passkeys::take(&mut tx, Purpose::Reauthenticate).await? else {
        let alert = passkey::EXPIRED;
        return Ok(with_alert(
            ctx,
            next,
            StatusCode::UNPROCESSABLE_ENTITY,
            alert,
        ));
    };
    let stored = db::passkeys::stored(&mut tx).await?;
    // The ceremony stays taken whatever follows.
    let released = tx.release().await?;
    let address = address_subject(&ctx.origin);
    let attempts = match db::identity::sign_in_attempt(
        &state.pool,
        &ctx.member.email,
        &address,
        &session.devices(),
    )
    .await?
    {
        Attempt::Locked { retry_after } => {
            let alert = "Too many failed attempts. Wait a few minutes, then try again.";
            let page = with_alert(ctx, next, StatusCode::OK, alert);
            return Ok(too_many(page, retry_after));
        }
        Attempt::Counted { ids, .. } => ids,
    };
    let asserted = passkeys
        .finish_authentication(&form.credential, &ceremony, &stored)
        .inspect_err(|e| passkey::log_refusal("a passkey confirming it's you", e))
        .ok();
    let context = format!("reauthenticate:{}", ctx.session_id);
    let proof = asserted
        .as_ref()
        .map_or(Proof::Wrong, |a| passkey::proof(&state, &context, a));
    let mut tx = released.begin().await?;
    let confirmed =
        db::account::reauthenticate(&mut tx, &[], &attempts, Some(&proof), &ctx.origin).await?;
    let Some(asserted) = asserted.filter(|_| confirmed) else {
        // Keep the recorded failure: commit before answering 401.
        tx.release().await?;
        let alert = "That passkey could not be verified. Try it again, or use your password.";
        return Ok(with_alert(ctx, next, StatusCode::UNAUTHORIZED, alert));
    };
    passkey::record_use(&state, &mut tx, ctx.session_id, &asserted).await?;
    Ok(Redirect::to(&next).into_response())
}
