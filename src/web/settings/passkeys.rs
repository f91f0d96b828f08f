//! Adding and removing passkeys on `/settings`.
//!
//! Adding takes two requests: the script asks for the options (the challenge,
//! kept in the database for this session), the browser creates the passkey,
//! and the script posts its answer with the name in the ordinary form. Both
//! need a recent sign-in: a passkey alone confirms it's you, so adding one must
//! not be easier than that.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::SettingsPage;
use crate::{
    attest::{digest, hex},
    db::{
        self,
        passkeys::{Added, NewPasskey, Purpose, Removed},
    },
    error::AppError,
    state::AppState,
    web::{
        extract::{Form, Path},
        forms::{self, FieldErrors},
        passkeys::{self as shared, relying_party},
        session::{self, Once, Session},
        tenant::{Ctx, Tx},
    },
};

/// Characters a passkey name may have (the table's constraint).
const NAME_MAX: usize = 64;

/// The add form as posted: by the script (options, then with its answer), or
/// without JavaScript (no answer).
#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    passkey_name: String,
    #[serde(default)]
    credential: String,
}

fn checked_name(errors: &mut FieldErrors, raw: &str) -> String {
    let name = forms::text(errors, "passkey_name", raw, NAME_MAX);
    if name.is_empty() {
        errors.add(
            "passkey_name",
            "Name the passkey, e.g. “Laptop”, to tell it apart later.",
        );
    }
    name
}

/// `POST /settings/passkeys/options`: the options to create a passkey with.
pub async fn options(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    Form(form): Form<AddForm>,
) -> Result<Response, AppError> {
    let passkeys = relying_party(&state)?;
    ctx.step_up("/settings")?;
    let mut errors = FieldErrors::default();
    checked_name(&mut errors, &form.passkey_name);
    if let Some((_, message)) = errors.iter().next() {
        return Ok(shared::refusal(StatusCode::UNPROCESSABLE_ENTITY, message));
    }
    let existing = db::passkeys::credential_ids(&mut tx).await?;
    let started = passkeys.start_registration(ctx.member.id.0, &ctx.member.email, existing)?;
    shared::begin(&state, &mut tx, ctx.session_id, Purpose::Register, started).await
}

/// The settings page again with the problem beside **Passkey name** (the name
/// kept), after committing what was done (a ceremony taken stays taken).
async fn refuse(
    state: &AppState,
    ctx: Ctx,
    mut tx: Tx,
    errors: FieldErrors,
    name: String,
) -> Result<Response, AppError> {
    let mut page = SettingsPage::load(state, ctx, &mut tx).await?;
    page.passkey_errors = errors;
    page.passkey_name = name;
    tx.release().await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /settings/passkeys`: the browser's answer; the passkey is added.
pub async fn add(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Form(form): Form<AddForm>,
) -> Result<Response, AppError> {
    let passkeys = relying_party(&state)?;
    ctx.step_up("/settings")?;
    let mut errors = FieldErrors::default();
    let name = checked_name(&mut errors, &form.passkey_name);
    if errors.is_empty() && form.credential.trim().is_empty() {
        errors.add(
            "passkey_name",
            "Adding a passkey needs JavaScript, which is off in this browser. Turn it on and try again, or set up an authenticator app.",
        );
    }
    if !errors.is_empty() {
        return refuse(&state, ctx, tx, errors, name).await;
    }
    let Some(ceremony) = db::passkeys::take(&mut tx, Purpose::Register).await? else {
        errors.add("passkey_name", shared::EXPIRED);
        return refuse(&state, ctx, tx, errors, name).await;
    };
    let registered = match passkeys.finish_registration(&form.credential, &ceremony) {
        Ok(registered) => registered,
        Err(e) => {
            shared::log_refusal("a passkey registration", &e);
            errors.add(
                "passkey_name",
                "Your browser's answer could not be verified, so no passkey was added. Try again.",
            );
            return refuse(&state, ctx, tx, errors, name).await;
        }
    };
    let attestation = state.attestor.attest(&format!(
        "passkey_added:{}:{}:{}",
        ctx.session_id,
        hex(&registered.credential_id),
        hex(&digest(registered.passkey.as_bytes()))
    ));
    let new = NewPasskey {
        name: &name,
        credential_id: &registered.credential_id,
        passkey: &registered.passkey,
        attestation: &attestation,
    };
    match db::passkeys::add(&mut tx, &new, &ctx.origin).await? {
        Added::Done => {
            session::set_once(
                &session,
                Once::Status,
                &format!("Passkey “{name}” added. Paddock asks for it after your password."),
            );
            Ok(Redirect::to("/settings").into_response())
        }
        Added::StepUp => Err(AppError::StepUp("/settings".into())),
        Added::Duplicate => {
            errors.add(
                "passkey_name",
                "This passkey is registered already; choose another authenticator.",
            );
            refuse(&state, ctx, tx, errors, name).await
        }
        Added::TooMany => {
            errors.add(
                "passkey_name",
                "You have 20 passkeys, the most Paddock keeps. Remove one first.",
            );
            refuse(&state, ctx, tx, errors, name).await
        }
        Added::Refused => Err(AppError::Internal(anyhow::anyhow!(
            "the database refused a verified passkey"
        ))),
    }
}

/// `POST /settings/passkeys/{id}/remove`: needs a recent sign-in; refused while
/// the organization requires a second factor and this is the last one.
pub async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<Uuid>,
) -> Result<Response, AppError> {
    ctx.step_up("/settings")?;
    match db::passkeys::remove(&mut tx, id, &ctx.origin).await? {
        Removed::Done => {
            session::set_once(&session, Once::Status, "Passkey removed.");
            Ok(Redirect::to("/settings").into_response())
        }
        Removed::StepUp => Err(AppError::StepUp("/settings".into())),
        Removed::NotFound => Err(AppError::NotFound),
        Removed::Required => {
            let mut page = SettingsPage::load(&state, ctx, &mut tx).await?;
            page.alert = Some(
                "Your organization requires two-factor authentication, and this passkey is your last second factor. Set up an authenticator app or add another passkey first.".into(),
            );
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
