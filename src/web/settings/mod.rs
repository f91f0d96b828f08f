//! `/settings`: password, two-factor status, passkeys and sessions.

pub mod passkeys;
pub mod totp;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    db,
    error::AppError,
    password,
    state::AppState,
    token::Token,
    web::{
        extract::{Form, Path},
        forms::{self, FieldErrors, when},
        service::{Guess, address_subject, guess, hashing, too_many},
        session::{self, Once, Session},
        tenant::{Ctx, Tx},
        views::device,
    },
};

struct PasskeyView {
    id: String,
    name: String,
    added: String,
    last_used: String,
}

struct SessionView {
    id: String,
    signed_in: String,
    last_active: String,
    ip: String,
    device: String,
    current: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings/index.html")]
pub struct SettingsPage {
    ctx: Ctx,
    status: Option<String>,
    alert: Option<String>,
    password_errors: FieldErrors,
    passkey_errors: FieldErrors,
    /// The name typed into **Passkey name**, kept when the form comes back.
    passkey_name: String,
    recovery_left: i32,
    passkeys_available: bool,
    passkeys: Vec<PasskeyView>,
    sessions: Vec<SessionView>,
}

impl SettingsPage {
    /// The page for `ctx`, read on the request's transaction.
    pub async fn load(state: &AppState, ctx: Ctx, tx: &mut Tx) -> Result<Self, AppError> {
        let recovery_left = if ctx.second_factors.totp {
            db::account::recovery_codes_left(tx).await?
        } else {
            0
        };
        let passkeys = db::passkeys::list(tx)
            .await?
            .into_iter()
            .map(|p| PasskeyView {
                id: p.id.to_string(),
                name: p.name,
                added: when(p.created_at),
                last_used: p.last_used_at.map_or_else(|| "Never".into(), when),
            })
            .collect();
        let sessions = db::account::sessions(tx)
            .await?
            .into_iter()
            .map(|s| SessionView {
                id: s.session_id.to_string(),
                signed_in: when(s.signed_in_at),
                last_active: when(s.last_active_at),
                ip: s.ip.unwrap_or_default(),
                device: device(s.user_agent.as_deref()),
                current: s.current,
            })
            .collect();
        Ok(Self {
            passkeys_available: state.settings.passkeys.is_some(),
            ctx,
            status: None,
            alert: None,
            password_errors: FieldErrors::default(),
            passkey_errors: FieldErrors::default(),
            passkey_name: String::new(),
            recovery_left,
            passkeys,
            sessions,
        })
    }
}

/// `GET /settings`.
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
) -> Result<SettingsPage, AppError> {
    let mut page = SettingsPage::load(&state, ctx, &mut tx).await?;
    page.status = session::take_once(&session, Once::Status);
    page.alert = session::take_once(&session, Once::Alert);
    Ok(page)
}

/// The password form as posted.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: SecretString,
    #[serde(default)]
    new_password: SecretString,
    #[serde(default)]
    confirm_new_password: SecretString,
}

/// `POST /settings/password`: every other session ends; this one gets a new id.
pub async fn change_password(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::default();
    if form.current_password.expose_secret().is_empty() {
        errors.add("current_password", "Enter your current password.");
    }
    forms::new_password(
        &mut errors,
        ("new_password", &form.new_password),
        ("confirm_new_password", &form.confirm_new_password),
        &[&ctx.member.email],
    );
    if !errors.is_empty() {
        let mut page = SettingsPage::load(&state, ctx, &mut tx).await?;
        page.password_errors = errors;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let released = tx.release().await?;
    let address = address_subject(&ctx.origin);
    let guessed = guess(
        &state,
        &ctx.member.email,
        &address,
        &session.devices(),
        form.current_password,
    )
    .await?;
    let new_password = form.new_password;
    let new_hash = hashing(&state, move || password::hash(&new_password)).await??;
    let mut tx = released.begin().await?;
    let (derived, attempts) = match guessed {
        Guess::Locked(retry_after) => {
            let mut page = SettingsPage::load(&state, ctx, &mut tx).await?;
            page.alert =
                Some("Too many failed attempts. Wait a few minutes, then try again.".into());
            return Ok(too_many(page.into_response(), retry_after));
        }
        Guess::Counted { derived, attempts } => (derived, attempts),
    };
    let token = Token::generate()?;
    let changed =
        db::account::change_password(&mut tx, &derived, &attempts, &new_hash, &token, &ctx.origin)
            .await?;
    if !changed {
        let mut page = SettingsPage::load(&state, ctx, &mut tx).await?;
        // Keep the recorded failure: commit before answering 401.
        tx.release().await?;
        page.password_errors
            .add("current_password", "That is not your current password.");
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    session.adopt(token);
    session::set_once(
        &session,
        Once::Status,
        "Password changed. Every other session was signed out.",
    );
    Ok(Redirect::to("/settings").into_response())
}

/// `POST /settings/sessions/{id}/revoke`: signs out one other session.
pub async fn revoke(
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<Uuid>,
) -> Result<Response, AppError> {
    let ended = db::account::revoke_sessions(&mut tx, Some(id), &ctx.origin).await?;
    if ended == 0 {
        return Err(AppError::NotFound);
    }
    session::set_once(&session, Once::Status, "That session was signed out.");
    Ok(Redirect::to("/settings").into_response())
}

/// `POST /settings/sessions/revoke-others`: signs out every other session.
pub async fn revoke_others(ctx: Ctx, mut tx: Tx, session: Session) -> Result<Response, AppError> {
    let ended = db::account::revoke_sessions(&mut tx, None, &ctx.origin).await?;
    let message = match ended {
        0 => "There were no other sessions.".to_owned(),
        1 => "Signed out 1 other session.".to_owned(),
        n => format!("Signed out {n} other sessions."),
    };
    session::set_once(&session, Once::Status, &message);
    Ok(Redirect::to("/settings").into_response())
}
