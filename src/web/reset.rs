//! `/reset/{code}`: a single-use link from an owner sets a forgotten password.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use secrecy::SecretString;
use serde::Deserialize;

use crate::{
    db,
    error::{AppError, error_page},
    password,
    state::AppState,
    token::Token,
    web::{
        extract::{Form, Path},
        forms::{self, FieldErrors},
        service::hashing,
        session::{self, Once, Session},
        tenant::ClientOrigin,
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    csrf: String,
    code: String,
    email: String,
    errors: FieldErrors,
}

fn invalid_link() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "This reset link was used already, has expired (they last an hour) or was copied incompletely. Ask an owner of your organization for a new one.",
    )
}

/// The member a valid link is for.
async fn valid(state: &AppState, code: &str) -> Result<Option<(Token, String)>, AppError> {
    let Some(token) = Token::parse(code) else {
        return Ok(None);
    };
    Ok(db::account::reset_link(&state.pool, &token.sha256())
        .await?
        .map(|email| (token, email)))
}

/// `GET /reset/{code}`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(code): Path<String>,
) -> Result<Response, AppError> {
    let Some((_, email)) = valid(&state, &code).await? else {
        return Ok(invalid_link());
    };
    Ok(ResetPage {
        csrf: session.csrf(),
        code,
        email,
        errors: FieldErrors::default(),
    }
    .into_response())
}

/// The new password as posted.
#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    new_password: SecretString,
    #[serde(default)]
    confirm_new_password: SecretString,
}

/// `POST /reset/{code}`: sets the password once and ends every session of that member.
pub async fn set(
    State(state): State<AppState>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    Path(code): Path<String>,
    Form(form): Form<ResetForm>,
) -> Result<Response, AppError> {
    let Some((token, email)) = valid(&state, &code).await? else {
        return Ok(invalid_link());
    };
    let mut errors = FieldErrors::default();
    forms::new_password(
        &mut errors,
        ("new_password", &form.new_password),
        ("confirm_new_password", &form.confirm_new_password),
        &[&email],
    );
    if !errors.is_empty() {
        let page = ResetPage {
            csrf: session.csrf(),
            code,
            email,
            errors,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let new_password = form.new_password;
    let hash = hashing(&state, move || password::hash(&new_password)).await??;
    if !db::account::reset_password(&state.pool, &token.sha256(), &hash, &origin).await? {
        return Ok(invalid_link());
    }
    session::set_once(
        &session,
        Once::Status,
        "Your new password is set. Sign in with it.",
    );
    Ok(Redirect::to("/login").into_response())
}
