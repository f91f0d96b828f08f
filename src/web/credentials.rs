//! Enrolling, listing, rotating and deleting a member's Alpaca keys.

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
    alpaca::{ApiKeys, Environment},
    db::{self, credentials::NewCredential, events::EventKind},
    domain::CredentialId,
    error::AppError,
    state::AppState,
    vault,
    web::{
        extract::{Form, Path},
        forms::{self, FieldErrors, when},
        service::{Verified, own_credential, verify_keys},
        session::{self, Once, Session},
        tenant::{Ctx, Tx},
    },
};

struct Row {
    id: String,
    label: String,
    environment: &'static str,
    account: String,
    key: String,
    added: String,
    last_used: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "credentials/index.html")]
pub struct IndexPage {
    ctx: Ctx,
    rows: Vec<Row>,
    status: Option<String>,
}

/// `GET /credentials`.
pub async fn index(ctx: Ctx, mut tx: Tx, session: Session) -> Result<IndexPage, AppError> {
    let rows = db::credentials::list(&mut tx)
        .await?
        .into_iter()
        .map(|c| Row {
            id: c.id.to_string(),
            key: vault::masked_key(&c),
            environment: c.environment.label(),
            account: c.account_number,
            added: when(c.created_at),
            last_used: c.last_used_at.map_or_else(|| "Never".into(), when),
            label: c.label,
        })
        .collect();
    let status = session::take_once(&session, Once::Status);
    Ok(IndexPage { ctx, rows, status })
}

#[derive(Template, WebTemplate)]
#[template(path = "credentials/new.html")]
pub struct NewPage {
    ctx: Ctx,
    label_value: String,
    environment: String,
    errors: FieldErrors,
    alert: Option<String>,
}

/// `GET /credentials/new`.
pub async fn new(ctx: Ctx) -> NewPage {
    NewPage {
        ctx,
        label_value: String::new(),
        environment: "paper".into(),
        errors: FieldErrors::default(),
        alert: None,
    }
}

/// The enrollment form as posted. Key material stays in secrecy types.
#[derive(Deserialize)]
pub struct EnrollForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    api_key_id: SecretString,
    #[serde(default)]
    secret_key: SecretString,
}

/// Key material with pasted whitespace removed, checked for a plausible shape.
fn keys_from(
    key_id: &SecretString,
    secret: &SecretString,
    errors: &mut FieldErrors,
) -> Option<ApiKeys> {
    let key_id = key_id.expose_secret().trim();
    let secret = secret.expose_secret().trim();
    let key_ok =
        (16..=40).contains(&key_id.len()) && key_id.chars().all(|c| c.is_ascii_alphanumeric());
    let secret_ok = (20..=100).contains(&secret.len())
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+=_-".contains(c));
    if !key_ok {
        errors.add(
            "api_key_id",
            "An API key ID is 16 to 40 letters and digits, like PKXXXXXXXXXXXXXXXXXX.",
        );
    }
    if !secret_ok {
        errors.add(
            "secret_key",
            "A secret key is 20 to 100 letters, digits or /+=_- characters.",
        );
    }
    (key_ok && secret_ok).then(|| ApiKeys::new(key_id, secret))
}

/// `POST /credentials`: verify with Alpaca, seal, store.
pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    tx: Tx,
    session: Session,
    Form(form): Form<EnrollForm>,
) -> Result<Response, AppError> {
    ctx.step_up("/credentials/new")?;
    let mut errors = FieldErrors::default();
    let label = forms::text(&mut errors, "label", &form.label, 64);
    if label.is_empty() {
        errors.add("label", "Give this account a label of 1 to 64 characters.");
    }
    let environment = Environment::parse(&form.environment);
    if environment.is_none() {
        errors.add("environment", "Choose Paper or Live.");
    }
    let keys = keys_from(&form.api_key_id, &form.secret_key, &mut errors);
    let page = |ctx: Ctx, errors: FieldErrors, alert: Option<String>, status: StatusCode| {
        let environment = form.environment.clone();
        (
            status,
            NewPage {
                ctx,
                label_value: label.clone(),
                environment,
                errors,
                alert,
            },
        )
            .into_response()
    };
    let (Some(environment), Some(keys)) = (environment, keys) else {
        return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
    };
    if !errors.is_empty() {
        return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
    }
    let released = tx.release().await?;
    let verified = verify_keys(&state, &released, ctx.member.id, environment, &keys).await;
    let account_number = match verified {
        Verified::Account(number) => number,
        Verified::Invalid(field, message) => {
            errors.add(field, message);
            return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
        }
        Verified::Unavailable(message) => {
            return Ok(page(
                ctx,
                errors,
                Some(message),
                StatusCode::SERVICE_UNAVAILABLE,
            ));
        }
    };
    let mut tx = released.begin().await?;
    let already = |existing: &str| {
        format!("You already enrolled this Alpaca account ({account_number}) as “{existing}”.")
    };
    if let Some(existing) = db::credentials::find_by_account(&mut tx, &account_number).await? {
        errors.add("api_key_id", already(&existing.label));
        return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
    }
    let id = CredentialId::new();
    let sealed = vault::seal_pair(
        state.sealer.as_ref(),
        ctx.member.organization_id,
        ctx.member.id,
        id,
        &keys,
    )
    .map_err(|e| AppError::Internal(e.into()))?;
    let last4 = last4(&keys);
    drop(keys);
    let inserted = db::credentials::insert(
        &mut tx,
        &NewCredential {
            id,
            label: &label,
            environment,
            sealed_key_id: &sealed.key_id,
            sealed_secret: &sealed.secret,
            key_id_last4: &last4,
            account_number: &account_number,
            seal_key_version: &sealed.seal_key_version,
        },
    )
    .await;
    match inserted {
        Ok(()) => {}
        // Two enrollments of one account raced past the check above.
        Err(e) if db::violates(&e, "credentials_member_account_key") => {
            errors.add(
                "api_key_id",
                format!("This Alpaca account ({account_number}) was just enrolled from another window: it is in your list."),
            );
            return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
        }
        Err(e) => return Err(e.into()),
    }
    db::events::record(
        &mut tx,
        EventKind::CredentialAdded,
        &format!("{label} ({}, {account_number})", environment.as_str()),
        &ctx.origin,
    )
    .await?;
    session::set_once(
        &session,
        Once::Status,
        &format!(
            "Saved “{label}”: Alpaca account {account_number} ({}).",
            environment.label()
        ),
    );
    Ok(Redirect::to("/credentials").into_response())
}

fn last4(keys: &ApiKeys) -> String {
    let key_id = keys.key_id().expose_secret();
    key_id[key_id.len().saturating_sub(4)..].to_owned()
}

#[derive(Template, WebTemplate)]
#[template(path = "credentials/rotate.html")]
pub struct RotatePage {
    ctx: Ctx,
    id: String,
    label: String,
    account: String,
    environment: &'static str,
    errors: FieldErrors,
    alert: Option<String>,
}

/// The keys a rotation posts.
#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    api_key_id: SecretString,
    #[serde(default)]
    secret_key: SecretString,
}

/// `GET /credentials/{id}/rotate`.
pub async fn rotate_form(
    ctx: Ctx,
    mut tx: Tx,
    Path(id): Path<CredentialId>,
) -> Result<RotatePage, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    Ok(RotatePage {
        ctx,
        id: credential.id.to_string(),
        label: credential.label,
        account: credential.account_number,
        environment: credential.environment.label(),
        errors: FieldErrors::default(),
        alert: None,
    })
}

/// `POST /credentials/{id}/rotate`: the new keys must belong to the same account.
pub async fn rotate(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<CredentialId>,
    Form(form): Form<RotateForm>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    ctx.step_up(&format!("/credentials/{id}/rotate"))?;
    let mut errors = FieldErrors::default();
    let keys = keys_from(&form.api_key_id, &form.secret_key, &mut errors);
    let page = |ctx: Ctx, errors: FieldErrors, alert: Option<String>, status: StatusCode| {
        (
            status,
            RotatePage {
                ctx,
                id: credential.id.to_string(),
                label: credential.label.clone(),
                account: credential.account_number.clone(),
                environment: credential.environment.label(),
                errors,
                alert,
            },
        )
            .into_response()
    };
    let Some(keys) = keys else {
        return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
    };
    let released = tx.release().await?;
    let verified = verify_keys(
        &state,
        &released,
        ctx.member.id,
        credential.environment,
        &keys,
    )
    .await;
    match verified {
        Verified::Account(number) if number == credential.account_number => {}
        Verified::Account(number) => {
            errors.add(
                "api_key_id",
                format!(
                    "These keys belong to another Alpaca account ({number}); rotation must keep account {}.",
                    credential.account_number
                ),
            );
            return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
        }
        Verified::Invalid(_, message) => {
            errors.add("api_key_id", message);
            return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
        }
        Verified::Unavailable(message) => {
            return Ok(page(
                ctx,
                errors,
                Some(message),
                StatusCode::SERVICE_UNAVAILABLE,
            ));
        }
    }
    let sealed = vault::seal_pair(
        state.sealer.as_ref(),
        credential.organization_id,
        credential.member_id,
        credential.id,
        &keys,
    )
    .map_err(|e| AppError::Internal(e.into()))?;
    let last4 = last4(&keys);
    drop(keys);
    let mut tx = released.begin().await?;
    if !db::credentials::replace_keys(
        &mut tx,
        credential.id,
        &sealed.key_id,
        &sealed.secret,
        &last4,
        &sealed.seal_key_version,
    )
    .await?
    {
        return Err(AppError::NotFound);
    }
    db::events::record(
        &mut tx,
        EventKind::CredentialRotated,
        &format!("{} ({})", credential.label, credential.account_number),
        &ctx.origin,
    )
    .await?;
    session::set_once(
        &session,
        Once::Status,
        &format!("Replaced the keys of “{}”.", credential.label),
    );
    Ok(Redirect::to("/credentials").into_response())
}

/// `POST /credentials/{id}/delete`: removes the sealed keys.
pub async fn delete(
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<CredentialId>,
) -> Result<Response, AppError> {
    ctx.step_up("/credentials")?;
    let label = db::credentials::delete(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound)?;
    db::events::record(&mut tx, EventKind::CredentialDeleted, &label, &ctx.origin).await?;
    session::set_once(
        &session,
        Once::Status,
        &format!("Deleted “{label}” and its sealed keys."),
    );
    Ok(Redirect::to("/credentials").into_response())
}
