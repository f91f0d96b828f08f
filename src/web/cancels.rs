//! Cancelling orders: the Cancel button of an open order, and "Cancel all
//! orders" behind its confirmation page, whose single-use token makes a
//! second submission of the same page harmless.

use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    alpaca::AlpacaError,
    db::credentials::Credential,
    domain::CredentialId,
    error::AppError,
    state::AppState,
    trading,
    vault::Purpose,
    web::{
        confirm::{self, Go},
        extract::{Form, Path},
        forms::FieldErrors,
        service::{
            LiveConfirmation, UNSEAL_FAILED, describe, live_action_allowed, own_credential,
            unseal_and_release, within,
        },
        session::{self, Once, Session},
        tenant::{Ctx, Tx},
        trading_views::{AccountHeader, ConfirmPage},
    },
};

/// `POST /accounts/{id}/orders/{order_id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path((id, order_id)): Path<(CredentialId, Uuid)>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let back = Redirect::to(&format!("/accounts/{}", credential.id)).into_response();
    if let Some((_, message)) = live_action_allowed(
        &ctx,
        &credential,
        LiveConfirmation::NotAsked,
        &format!("/accounts/{}", credential.id),
    )? {
        session::set_once(&session, Once::Alert, message);
        return Ok(back);
    }
    let (unsealed, released) = unseal_and_release(
        &state,
        &ctx,
        tx,
        std::slice::from_ref(&credential),
        Purpose::Order,
    )
    .await?;
    let Some(keys) = unsealed.into_iter().flatten().next() else {
        session::set_once(&session, Once::Alert, UNSEAL_FAILED);
        return Ok(back);
    };
    let env = credential.environment;
    let result = within(&state, released.alpaca().cancel_order(env, &keys, order_id)).await;
    drop(keys);
    match result {
        Ok(()) => session::set_once(&session, Once::Status, "The order was canceled."),
        Err(AlpacaError::NotFound) => session::set_once(
            &session,
            Once::Alert,
            "Alpaca could not find that order; it may have filled or been canceled already.",
        ),
        Err(AlpacaError::Unprocessable(message) | AlpacaError::Refused(message)) => {
            session::set_once(
                &session,
                Once::Alert,
                &format!("Alpaca could not cancel that order: {message}"),
            )
        }
        Err(e) => session::set_once(&session, Once::Alert, &describe(&e)),
    }
    Ok(back)
}

/// A confirmation form's fields.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConfirmForm {
    action_token: String,
    confirm_live: Option<String>,
}

fn cancel_all_page(ctx: Ctx, credential: &Credential, token: String) -> ConfirmPage {
    let account = AccountHeader::of(credential);
    ConfirmPage {
        action: format!("/accounts/{}/orders/cancel-all", account.id),
        title: "Cancel all orders".into(),
        intro: format!(
            "Every open order of {} will be canceled, including the exits of bracket orders. Orders that fill before Alpaca cancels them stay filled.",
            account.label
        ),
        button: "Cancel all orders",
        token,
        qty: None,
        alert: None,
        errors: FieldErrors::default(),
        account,
        ctx,
    }
}

/// `GET /accounts/{id}/orders/cancel-all`: the confirmation page.
pub async fn cancel_all_form(
    ctx: Ctx,
    mut tx: Tx,
    Path(id): Path<CredentialId>,
) -> Result<ConfirmPage, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    Ok(cancel_all_page(ctx, &credential, trading::new_token()))
}

/// `POST /accounts/{id}/orders/cancel-all`.
pub async fn cancel_all(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<CredentialId>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let page = cancel_all_page(ctx.clone(), &credential, form.action_token.clone());
    let already = "This confirmation was already sent, so nothing more was canceled. Open orders below are as Alpaca reports them now.";
    let Go {
        keys,
        released,
        page,
    } = match confirm::check(
        &state,
        &ctx,
        tx,
        &session,
        &credential,
        confirm::Submission {
            page,
            confirm_live: &form.confirm_live,
            already,
        },
    )
    .await?
    {
        Ok(go) => go,
        Err(answer) => return Ok(answer),
    };
    let env = credential.environment;
    let result = within(&state, released.alpaca().cancel_all_orders(env, &keys)).await;
    drop(keys);
    match result {
        Ok(items) => {
            let canceled = items.iter().filter(|i| i.succeeded()).count();
            let failed: Vec<String> = items
                .iter()
                .filter(|i| !i.succeeded())
                .map(|i| i.message().unwrap_or_else(|| "no reason given".into()))
                .collect();
            let line = match canceled {
                0 if failed.is_empty() => "There were no open orders to cancel.".to_owned(),
                1 => "Alpaca is canceling 1 open order.".to_owned(),
                n => format!("Alpaca is canceling {n} open orders."),
            };
            session::set_once(&session, Once::Status, &line);
            if !failed.is_empty() {
                let alert = format!(
                    "Alpaca could not cancel {} order{}: {}",
                    failed.len(),
                    if failed.len() == 1 { "" } else { "s" },
                    failed.join("; ")
                );
                session::set_once(&session, Once::Alert, &alert);
            }
            Ok(confirm::back_to_account(&credential))
        }
        Err(e) => Ok(confirm::failed(
            page,
            &e,
            "Nothing was canceled.",
            "Paddock could not confirm what was canceled — check Open orders before trying again.",
        )),
    }
}
