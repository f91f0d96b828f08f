//! What every confirmation page that changes an account (close a position,
//! cancel all orders, close all positions) checks before anything is sent: the
//! live gate, a valid single-use token used once, and keys that open — then
//! the connection is released and the caller talks to Alpaca.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use crate::{
    alpaca::{AlpacaError, ApiKeys},
    db::{self, credentials::Credential},
    error::AppError,
    state::AppState,
    trading,
    vault::Purpose,
    web::{
        service::{
            LiveConfirmation, UNSEAL_FAILED, describe, failure_status, live_action_allowed,
            unseal_and_release,
        },
        session::{self, Once, Session},
        tenant::{Ctx, Released, Tx},
        trading_views::ConfirmPage,
    },
};

/// The checks passed: the keys, the released connection's way to Alpaca, and
/// the page (with a fresh token) to show again if Alpaca fails.
pub struct Go {
    pub keys: ApiKeys,
    pub released: Released,
    pub page: Box<ConfirmPage>,
}

/// A submitted confirmation: its page (with its token and any field errors),
/// the live checkbox, and the status line for a token used before.
pub struct Submission<'a> {
    pub page: ConfirmPage,
    pub confirm_live: &'a Option<String>,
    pub already: &'a str,
}

/// Runs the checks for a submitted confirmation: go ahead, or `Err` with the
/// answer to give (nothing was sent). The page gets a fresh token whenever it
/// is shown again.
pub async fn check(
    state: &AppState,
    ctx: &Ctx,
    mut tx: Tx,
    session: &Session,
    credential: &Credential,
    submission: Submission<'_>,
) -> Result<Result<Go, Response>, AppError> {
    let Submission {
        mut page,
        confirm_live,
        already,
    } = submission;
    let confirmation = LiveConfirmation::of_checkbox(confirm_live);
    if let Some((field, message)) = live_action_allowed(ctx, credential, confirmation, &ctx.path)? {
        page.errors.add(field, message);
    }
    if !page.errors.is_empty() {
        return Ok(Err(unprocessable(page)));
    }
    if !trading::valid_token(&page.token) {
        page.token = trading::new_token();
        page.alert = Some(format!(
            "This confirmation carried no valid token. Nothing was sent to Alpaca; press {} again.",
            page.button
        ));
        return Ok(Err(unprocessable(page)));
    }
    if !db::action_tokens::use_once(&mut tx, &page.token).await? {
        session::set_once(session, Once::Status, already);
        return Ok(Err(back_to_account(credential)));
    }
    let (unsealed, released) = unseal_and_release(
        state,
        ctx,
        tx,
        std::slice::from_ref(credential),
        Purpose::Order,
    )
    .await?;
    page.token = trading::new_token();
    let Some(keys) = unsealed.into_iter().flatten().next() else {
        page.alert = Some(UNSEAL_FAILED.into());
        return Ok(Err((StatusCode::CONFLICT, page).into_response()));
    };
    Ok(Ok(Go {
        keys,
        released,
        page: Box::new(page),
    }))
}

fn unprocessable(page: ConfirmPage) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

/// 303 back to the account page.
pub fn back_to_account(credential: &Credential) -> Response {
    Redirect::to(&format!("/accounts/{}", credential.id)).into_response()
}

/// The page again after Alpaca failed: a definite refusal changed nothing (as
/// `nothing` says); after a time-out or an unreadable answer it may have, and
/// the page says what to check first (`unknown`).
pub fn failed(
    mut page: Box<ConfirmPage>,
    e: &AlpacaError,
    nothing: &str,
    unknown: &str,
) -> Response {
    let unconfirmed = matches!(e, AlpacaError::Unavailable(_) | AlpacaError::Unreadable(_));
    page.alert = Some(format!(
        "{}. {}",
        describe(e),
        if unconfirmed { unknown } else { nothing }
    ));
    (failure_status(e), *page).into_response()
}
