//! Setting up, using up and turning off the authenticator app (TOTP).

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::{
    db::{self, account::Disabled},
    error::AppError,
    state::AppState,
    totp::{self, TotpSecret},
    vault,
    web::{
        extract::Form,
        forms::{self, FieldErrors},
        session::{self, Once, Session},
        tenant::{Ctx, Tx},
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "settings/totp.html")]
pub struct SetupPage {
    ctx: Ctx,
    qr_svg: String,
    secret_text: String,
    errors: FieldErrors,
    /// Offered instead when the organization requires a second factor.
    passkeys_available: bool,
    passkey_errors: FieldErrors,
    passkey_name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings/codes.html")]
pub struct CodesPage {
    ctx: Ctx,
    heading: &'static str,
    message: &'static str,
    codes: Vec<String>,
}

/// The secret being set up: the stored one, or a new one stored now.
async fn secret_being_set_up(
    state: &AppState,
    ctx: &Ctx,
    tx: &mut Tx,
) -> Result<TotpSecret, AppError> {
    let sealer = state.sealer.as_ref();
    let (organization, member) = (ctx.member.organization_id, ctx.member.id);
    if let Some(existing) = db::account::totp(tx).await?
        && !existing.enabled
        && let Ok(secret) = vault::open_totp(
            sealer,
            organization,
            member,
            &crate::seal::Sealed::from_bytes(existing.sealed_secret),
        )
    {
        return Ok(secret);
    }
    let secret = TotpSecret::generate()?;
    let (sealed, version) = vault::seal_totp(sealer, organization, member, &secret)
        .map_err(|e| AppError::Internal(e.into()))?;
    db::account::store_totp_secret(tx, sealed.as_bytes(), &version).await?;
    Ok(secret)
}

fn setup_page(
    state: &AppState,
    ctx: Ctx,
    secret: &TotpSecret,
    errors: FieldErrors,
) -> Result<SetupPage, AppError> {
    let uri = secret.uri(&ctx.member.email);
    Ok(SetupPage {
        qr_svg: totp::qr_svg(uri.expose_secret())?,
        secret_text: secret.base32().expose_secret().to_owned(),
        ctx,
        errors,
        passkeys_available: state.settings.passkeys.is_some(),
        passkey_errors: FieldErrors::default(),
        passkey_name: String::new(),
    })
}

/// `GET /settings/totp`: the QR code and the key for manual entry.
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
) -> Result<Response, AppError> {
    if ctx.second_factors.totp {
        return Ok(Redirect::to("/settings").into_response());
    }
    let secret = secret_being_set_up(&state, &ctx, &mut tx).await?;
    Ok(setup_page(&state, ctx, &secret, FieldErrors::default())?.into_response())
}

/// The confirmation code as posted.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Ten new recovery codes and their hashes.
fn new_recovery_codes() -> Result<(Vec<String>, Vec<Vec<u8>>), AppError> {
    let codes = totp::recovery_codes()?;
    let hashes = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
    Ok((codes, hashes))
}

/// `POST /settings/totp`: a code from the app turns it on; the recovery codes
/// are shown on this response, once.
pub async fn enable(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    if ctx.second_factors.totp {
        return Ok(Redirect::to("/settings").into_response());
    }
    let secret = secret_being_set_up(&state, &ctx, &mut tx).await?;
    let mut errors = FieldErrors::default();
    let code = forms::text(&mut errors, "code", &form.code, 16);
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let step = secret.check(&code, now).and_then(|s| i64::try_from(s).ok());
    let Some(step) = step.filter(|_| errors.is_empty()) else {
        errors.add(
            "code",
            "That code does not match. Enter the 6-digit code your app shows now.",
        );
        let page = setup_page(&state, ctx, &secret, errors)?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let (codes, hashes) = new_recovery_codes()?;
    if !db::account::enable_totp(&mut tx, step, &hashes, &ctx.origin).await? {
        return Ok(Redirect::to("/settings").into_response());
    }
    Ok(CodesPage {
        ctx,
        heading: "Two-factor authentication is on",
        message: "From now on, signing in asks for a code from your app.",
        codes,
    }
    .into_response())
}

/// `POST /settings/totp/disable`: needs a recent sign-in; refused while the
/// organization requires a second factor and no passkey remains.
pub async fn disable(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
) -> Result<Response, AppError> {
    ctx.step_up("/settings")?;
    match db::account::disable_totp(&mut tx, &ctx.origin).await? {
        Disabled::Done => {
            session::set_once(&session, Once::Status, "Two-factor authentication is off.");
            Ok(Redirect::to("/settings").into_response())
        }
        Disabled::StepUp => Err(AppError::StepUp("/settings".into())),
        Disabled::Required => {
            let mut page = super::SettingsPage::load(&state, ctx, &mut tx).await?;
            page.alert = Some(
                "Your organization requires two-factor authentication: add a passkey before turning the app off.".into(),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// `POST /settings/recovery-codes`: ten new codes, shown once; the old stop working.
pub async fn regenerate(ctx: Ctx, mut tx: Tx) -> Result<Response, AppError> {
    let (codes, hashes) = new_recovery_codes()?;
    if !db::account::replace_recovery_codes(&mut tx, &hashes, &ctx.origin).await? {
        return Ok(Redirect::to("/settings").into_response());
    }
    Ok(CodesPage {
        ctx,
        heading: "New recovery codes",
        message: "Your old recovery codes no longer work.",
        codes,
    }
    .into_response())
}
