//! Sign-up, sign-in and sign-out.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    Form,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tower_sessions::Session;
use validator::Validate;

use crate::{
    config::SignupMode,
    db::{self, events::EventKind, throttle::Scope},
    domain::Email,
    error::AppError,
    password,
    state::AppState,
    web::{
        forms::FieldErrors,
        session::{self, Once},
        tenant::ClientOrigin,
    },
};

const BAD_CREDENTIALS: &str = "That email and password do not match an account.";

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    errors: FieldErrors,
    alert: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: SecretString,
}

/// `GET /login`.
pub async fn login_form(session: Session) -> Result<Response, AppError> {
    if session::signed_in(&session).await?.is_some() {
        return Ok(Redirect::to("/portfolio").into_response());
    }
    let status = session::take_once(&session, Once::Status).await?;
    Ok(LoginPage {
        csrf: session::csrf_token(&session).await?,
        email: String::new(),
        errors: FieldErrors::default(),
        alert: None,
        status,
    }
    .into_response())
}

/// `POST /login`: throttled per account and per address; one generic message.
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let page = |status: StatusCode, alert: &str, csrf: String, email: &str| {
        (
            status,
            LoginPage {
                csrf,
                email: email.to_owned(),
                errors: FieldErrors::default(),
                alert: Some(alert.to_owned()),
                status: None,
            },
        )
            .into_response()
    };
    let csrf = session::csrf_token(&session).await?;
    let typed_email = form.email.trim().to_owned();
    let mut errors = FieldErrors::default();
    if typed_email.is_empty() {
        errors.add("email", "Enter your email address.");
    }
    if form.password.expose_secret().is_empty() {
        errors.add("password", "Enter your password.");
    }
    if !errors.is_empty() {
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            LoginPage {
                csrf,
                email: typed_email,
                errors,
                alert: None,
                status: None,
            },
        )
            .into_response());
    }
    let account_subject = account_subject(&typed_email);
    let address_subject = origin.ip.clone().unwrap_or_else(|| "unknown".into());

    // Count this attempt before checking the password, one attempt at a time per
    // account and per address: parallel guesses cannot all pass the same count.
    let mut tx = state.pool.begin().await?;
    db::throttle::serialize(&mut tx, Scope::Account, &account_subject).await?;
    db::throttle::serialize(&mut tx, Scope::Address, &address_subject).await?;
    let locked = match db::throttle::locked_for(&mut tx, Scope::Account, &account_subject).await? {
        Some(wait) => Some(wait),
        None => db::throttle::locked_for(&mut tx, Scope::Address, &address_subject).await?,
    };
    if let Some(wait) = locked {
        tx.commit().await?;
        crate::metrics::sign_in("locked");
        let mut response = page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins. Wait a few minutes, then try again.",
            csrf,
            &typed_email,
        );
        let seconds = wait.whole_seconds().max(1).to_string();
        if let Ok(value) = HeaderValue::from_str(&seconds) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let (account_attempt, account_locked) =
        db::throttle::record_attempt(&mut tx, Scope::Account, &account_subject).await?;
    let (address_attempt, address_locked) =
        db::throttle::record_attempt(&mut tx, Scope::Address, &address_subject).await?;
    let email = Email::parse(&typed_email);
    let record = match &email {
        Some(email) => db::members::sign_in_lookup(&mut tx, email).await?,
        None => None,
    };
    tx.commit().await?;

    let stored = record.as_ref().map(|r| r.password_hash.clone());
    let candidate = form.password;
    let ok = hashing(&state, move || {
        password::verify(stored.as_deref(), &candidate)
    })
    .await?;

    match record.filter(|_| ok) {
        Some(record) => {
            session::sign_in(&session, record.member_id, record.organization_id).await?;
            let mut tx =
                db::begin_tenant(&state.pool, record.member_id, record.organization_id).await?;
            db::throttle::forget(&mut tx, &[account_attempt, address_attempt]).await?;
            db::throttle::clear(&mut tx, Scope::Account, &account_subject).await?;
            db::events::record(&mut tx, EventKind::SignIn, "", &origin).await?;
            tx.commit().await?;
            crate::metrics::sign_in("success");
            Ok(Redirect::to("/portfolio").into_response())
        }
        None => {
            let mut tx = state.pool.begin().await?;
            db::events::record_sign_in_problem(
                &mut tx,
                &typed_email,
                EventKind::SignInFailed,
                "wrong password",
                &origin,
            )
            .await?;
            if account_locked || address_locked {
                let detail = if account_locked {
                    "too many failed sign-ins for this account"
                } else {
                    "too many failed sign-ins from this address"
                };
                tracing::warn!(detail, "sign-in locked");
                db::events::record_sign_in_problem(
                    &mut tx,
                    &typed_email,
                    EventKind::SignInLocked,
                    detail,
                    &origin,
                )
                .await?;
            }
            tx.commit().await?;
            crate::metrics::sign_in("failure");
            Ok(page(
                StatusCode::UNAUTHORIZED,
                BAD_CREDENTIALS,
                csrf,
                &typed_email,
            ))
        }
    }
}

/// Runs CPU- and memory-heavy password hashing on the blocking pool, at most a
/// few at a time; a request that cannot get a slot within 5 s gets a 503.
async fn hashing<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let permit = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        state.hashing.clone().acquire_owned(),
    )
    .await
    .map_err(|_| AppError::Busy)?
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await?)
}

/// The throttling subject for an account: a hash of the normalized email, so the
/// table of failures holds no addresses.
fn account_subject(email: &str) -> String {
    let normalized = email.trim().to_lowercase();
    orion::hash::digest(normalized.as_bytes())
        .map(|d| d.as_ref().iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or(normalized)
}

/// `POST /logout`: deletes the session server-side.
pub async fn logout(
    session: Session,
    ctx: crate::web::tenant::Ctx,
    mut tx: crate::web::tenant::Tx,
) -> Result<Response, AppError> {
    db::events::record(&mut tx, EventKind::SignOut, "", &ctx.origin).await?;
    session::sign_out(&session).await?;
    Ok(Redirect::to("/login").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/signup.html")]
struct SignupPage {
    csrf: String,
    form: SignupValues,
    errors: FieldErrors,
    invite_only: bool,
}

#[derive(Default)]
struct SignupValues {
    email: String,
    organization_name: String,
    invite_code: String,
}

#[derive(Deserialize, Validate)]
pub struct SignupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: SecretString,
    #[serde(default)]
    confirm_password: SecretString,
    #[serde(default)]
    #[validate(length(max = 100, message = "Use at most 100 characters."))]
    organization_name: String,
    #[serde(default)]
    #[validate(length(max = 64, message = "That is not an invite code."))]
    invite_code: String,
}

/// `GET /signup`.
pub async fn signup_form(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, AppError> {
    if session::signed_in(&session).await?.is_some() {
        return Ok(Redirect::to("/portfolio").into_response());
    }
    Ok(SignupPage {
        csrf: session::csrf_token(&session).await?,
        form: SignupValues::default(),
        errors: FieldErrors::default(),
        invite_only: state.settings.signup == SignupMode::InviteOnly,
    }
    .into_response())
}

/// `POST /signup`: creates an organization (you become owner) or joins one by invite.
pub async fn signup(
    State(state): State<AppState>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    Form(form): Form<SignupForm>,
) -> Result<Response, AppError> {
    let invite_only = state.settings.signup == SignupMode::InviteOnly;
    let values = SignupValues {
        email: form.email.trim().to_owned(),
        organization_name: form.organization_name.trim().to_owned(),
        invite_code: form.invite_code.trim().to_owned(),
    };
    let mut errors = FieldErrors::default();
    errors.extend_from(form.validate());
    let email = Email::parse(&values.email);
    if email.is_none() {
        errors.add("email", "Enter an email address like name@example.com.");
    }
    if let Some(reason) = password::weakness(&form.password, &[values.email.as_str()]) {
        errors.add("password", reason);
    }
    if form.password.expose_secret() != form.confirm_password.expose_secret() {
        errors.add("confirm_password", "The two passwords differ.");
    }
    match (
        values.organization_name.is_empty(),
        values.invite_code.is_empty(),
    ) {
        (true, true) if invite_only => errors.add("invite_code", "Enter your invite code."),
        (true, true) => errors.add(
            "organization_name",
            "Enter an organization name, or an invite code to join one.",
        ),
        (false, false) => errors.add(
            "invite_code",
            "Give an organization name or an invite code, not both.",
        ),
        (false, true) if invite_only => errors.add(
            "organization_name",
            "New organizations are closed on this Paddock: ask an owner for an invite code.",
        ),
        _ => {}
    }
    let page = |errors: FieldErrors, values: SignupValues, csrf: String| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            SignupPage {
                csrf,
                form: values,
                errors,
                invite_only,
            },
        )
            .into_response()
    };
    let csrf = session::csrf_token(&session).await?;
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return Ok(page(errors, values, csrf));
    };

    let secret = form.password;
    let hash = hashing(&state, move || password::hash(&secret)).await??;
    let mut tx = state.pool.begin().await?;
    let created = if values.invite_code.is_empty() {
        db::members::create_organization(&mut tx, &values.organization_name, &email, &hash)
            .await
            .map(Some)
    } else {
        let code_hash = invite_hash(&values.invite_code)?;
        db::members::redeem_invite(&mut tx, &code_hash, &email, &hash).await
    };
    let (member, organization) = match created {
        Ok(Some(ids)) => ids,
        Ok(None) => {
            errors.add(
                "invite_code",
                "This invite code is not valid: it may be mistyped, used already, or expired.",
            );
            return Ok(page(errors, values, csrf));
        }
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("members_email_key") => {
            errors.add(
                "email",
                "An account with this email already exists. Sign in instead.",
            );
            return Ok(page(errors, values, csrf));
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;

    session::sign_in(&session, member, organization).await?;
    let mut tx = db::begin_tenant(&state.pool, member, organization).await?;
    let detail = if values.invite_code.is_empty() {
        "created the organization"
    } else {
        "joined with an invite"
    };
    db::events::record(&mut tx, EventKind::SignedUp, detail, &origin).await?;
    if !values.invite_code.is_empty() {
        db::events::record(&mut tx, EventKind::InviteAccepted, "", &origin).await?;
    }
    db::events::record(&mut tx, EventKind::SignIn, "", &origin).await?;
    tx.commit().await?;
    Ok(Redirect::to("/portfolio").into_response())
}

/// The stored form of an invite code: its BLAKE2b-256 hash.
pub fn invite_hash(code: &str) -> anyhow::Result<Vec<u8>> {
    let digest = orion::hash::digest(code.trim().as_bytes())
        .map_err(|_| anyhow::anyhow!("hashing the invite code failed"))?;
    Ok(digest.as_ref().to_vec())
}
