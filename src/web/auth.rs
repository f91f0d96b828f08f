//! Sign-up, sign-in and sign-out.
//!
//! The app never sees a stored password hash: sign-in asks the database to count
//! the attempt and hand out the salt, computes Argon2id off the runtime, and asks
//! the database to compare and, on a match, to start a session under a new secret.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{
    config::SignupMode,
    db::{self, events::EventKind},
    domain::Email,
    error::AppError,
    password,
    state::AppState,
    token::Token,
    web::{
        extract::Form,
        forms::{self, FieldErrors},
        service::{Guess, address_subject, guess, hashing, too_many},
        session::{Once, Session, take_once},
        tenant::{ClientOrigin, Ctx, Tx},
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

impl LoginPage {
    fn new(session: &Session, email: &str) -> Self {
        Self {
            csrf: session.csrf(),
            email: email.to_owned(),
            errors: FieldErrors::default(),
            alert: None,
            status: None,
        }
    }

    fn with_alert(mut self, status: StatusCode, alert: &str) -> Response {
        self.alert = Some(alert.to_owned());
        (status, self).into_response()
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: SecretString,
}

/// Whether the browser holds the secret of a live session.
async fn signed_in(state: &AppState, session: &Session) -> Result<bool, AppError> {
    Ok(match session.presented() {
        Some(token) => db::identity::is_signed_in(&state.pool, &token).await?,
        None => false,
    })
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, AppError> {
    if signed_in(&state, &session).await? {
        return Ok(Redirect::to("/portfolio").into_response());
    }
    let mut page = LoginPage::new(&session, "");
    page.status = take_once(&session, Once::Status);
    Ok(page.into_response())
}

/// `POST /login`: throttled per account and per address, or per device for a
/// browser that signed in to this account before; one generic message.
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    ClientOrigin(origin): ClientOrigin,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let mut page = LoginPage::new(&session, form.email.trim());
    let email = forms::text(&mut page.errors, "email", &form.email, 254);
    if email.is_empty() {
        page.errors.add("email", "Enter your email address.");
    } else if Email::parse(&email).is_none() {
        page.errors
            .add("email", "Enter an email address like name@example.com.");
    }
    if form.password.expose_secret().is_empty() {
        page.errors.add("password", "Enter your password.");
    }
    let Some(email) = Email::parse(&email).filter(|_| page.errors.is_empty()) else {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let address = address_subject(&origin);
    let devices = session.devices();
    let guessed = guess(&state, email.as_str(), &address, &devices, form.password).await?;
    let (derived, attempts) = match guessed {
        Guess::Locked(retry_after) => {
            crate::metrics::sign_in("locked");
            let page = page.with_alert(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed sign-ins. Wait a few minutes, then try again.",
            );
            return Ok(too_many(page, retry_after));
        }
        Guess::Counted { derived, attempts } => (derived, attempts),
    };
    let token = Token::generate()?;
    let signed_in = db::identity::sign_in(
        &state.pool,
        email.as_str(),
        &address,
        &derived,
        &attempts,
        &token,
        &origin,
    )
    .await?;
    let Some(signed_in) = signed_in else {
        crate::metrics::sign_in("failure");
        return Ok(page.with_alert(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS));
    };
    if !signed_in.second_factor {
        crate::metrics::sign_in("success");
    }
    session.adopt(token);
    Ok(Redirect::to(if signed_in.second_factor {
        "/login/2fa"
    } else {
        "/portfolio"
    })
    .into_response())
}

/// `POST /logout`: ends the session server-side.
pub async fn logout(ctx: Ctx, mut tx: Tx, session: Session) -> Result<Response, AppError> {
    db::events::record(&mut tx, EventKind::SignOut, "", &ctx.origin).await?;
    db::identity::end_session(&mut tx).await?;
    session.forget()?;
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

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: SecretString,
    #[serde(default)]
    confirm_password: SecretString,
    #[serde(default)]
    organization_name: String,
    #[serde(default)]
    invite_code: String,
}

/// `GET /signup`.
pub async fn signup_form(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, AppError> {
    if signed_in(&state, &session).await? {
        return Ok(Redirect::to("/portfolio").into_response());
    }
    Ok(SignupPage {
        csrf: session.csrf(),
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
    let mut errors = FieldErrors::default();
    let values = SignupValues {
        email: forms::text(&mut errors, "email", &form.email, 254),
        organization_name: forms::text(
            &mut errors,
            "organization_name",
            &form.organization_name,
            100,
        ),
        invite_code: forms::text(&mut errors, "invite_code", &form.invite_code, 64),
    };
    let email = Email::parse(&values.email);
    if email.is_none() {
        errors.add("email", "Enter an email address like name@example.com.");
    }
    forms::new_password(
        &mut errors,
        ("password", &form.password),
        ("confirm_password", &form.confirm_password),
        &[values.email.as_str()],
    );
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
    let page = |errors: FieldErrors, values: SignupValues| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            SignupPage {
                csrf: session.csrf(),
                form: values,
                errors,
                invite_only,
            },
        )
            .into_response()
    };
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return Ok(page(errors, values));
    };

    let secret = form.password;
    let hash = hashing(&state, move || password::hash(&secret)).await??;
    let token = Token::generate()?;
    let created = if values.invite_code.is_empty() {
        db::identity::create_organization(
            &state.pool,
            &values.organization_name,
            &email,
            &hash,
            &token,
            &origin,
        )
        .await
        .map(Some)
    } else {
        db::identity::redeem_invite(
            &state.pool,
            &db::invites::code_hash(&values.invite_code)?,
            &email,
            &hash,
            &token,
            &origin,
        )
        .await
    };
    match created {
        Ok(Some(_)) => {
            session.adopt(token);
            Ok(Redirect::to("/portfolio").into_response())
        }
        Ok(None) => {
            errors.add(
                "invite_code",
                "This invite code is not valid: it may be mistyped, used already, or expired.",
            );
            Ok(page(errors, values))
        }
        Err(e) if db::violates(&e, "members_email_key") => {
            errors.add(
                "email",
                "An account with this email already exists. Sign in instead.",
            );
            Ok(page(errors, values))
        }
        Err(e) => Err(e.into()),
    }
}
