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
    db::{self, account::Proof},
    error::AppError,
    state::AppState,
    totp,
    web::{
        extract::Form,
        forms::{self, FieldErrors},
        service::{Guess, SealedTotp, address_subject, guess, local_path, too_many, totp_proof},
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
    let (derived, attempts) =
        match guess(&state, &ctx.member.email, &address, form.password).await? {
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
