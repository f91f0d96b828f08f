//! Closing positions, each behind its own confirmation page: one position
//! (all of it, or a quantity) and all positions at once (open orders are
//! canceled first, as Alpaca's `cancel_orders=true` does). A confirmation's
//! single-use token makes a second submission of the same page harmless.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::{
    alpaca::AlpacaError,
    db::credentials::Credential,
    domain::CredentialId,
    error::AppError,
    state::AppState,
    trading,
    web::{
        confirm::{self, Go},
        extract::{Form, Path},
        forms::FieldErrors,
        service::{own_credential, within},
        session::{self, Once, Session},
        tenant::{Ctx, Tx},
        trading_views::{AccountHeader, ConfirmPage},
    },
};

/// A symbol in our URL: Alpaca's position symbols are letters and digits,
/// with `.` (share classes) and `/` (crypto pairs) inside; anything else is 404.
fn position_symbol(raw: &str) -> Result<String, AppError> {
    let symbol = raw.trim().to_uppercase();
    let fits = (1..=21).contains(&symbol.len())
        && symbol.starts_with(|c: char| c.is_ascii_alphanumeric())
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'/');
    if fits {
        Ok(symbol)
    } else {
        Err(AppError::NotFound)
    }
}

fn close_page(
    ctx: Ctx,
    credential: &Credential,
    symbol: &str,
    token: String,
    qty: String,
) -> ConfirmPage {
    let account = AccountHeader::of(credential);
    ConfirmPage {
        action: format!(
            "/accounts/{}/positions/{}/close",
            account.id,
            crate::alpaca::endpoints::path_segment(symbol)
        ),
        title: format!("Close the {symbol} position"),
        intro: format!(
            "Alpaca closes the position in {symbol} on {} with a market order, now or at the next open.",
            account.label
        ),
        button: "Close position",
        token,
        qty: Some(qty),
        alert: None,
        errors: FieldErrors::default(),
        account,
        ctx,
    }
}

/// `GET /accounts/{id}/positions/{symbol}/close`.
pub async fn close_form(
    ctx: Ctx,
    mut tx: Tx,
    Path((id, symbol)): Path<(CredentialId, String)>,
) -> Result<ConfirmPage, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let symbol = position_symbol(&symbol)?;
    Ok(close_page(
        ctx,
        &credential,
        &symbol,
        trading::new_token(),
        String::new(),
    ))
}

/// The close confirmation as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CloseForm {
    qty: String,
    action_token: String,
    confirm_live: Option<String>,
}

/// `POST /accounts/{id}/positions/{symbol}/close`.
pub async fn close(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path((id, symbol)): Path<(CredentialId, String)>,
    Form(form): Form<CloseForm>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let symbol = position_symbol(&symbol)?;
    let qty_text = form.qty.trim().to_owned();
    let mut page = close_page(
        ctx.clone(),
        &credential,
        &symbol,
        form.action_token.clone(),
        qty_text.clone(),
    );
    let qty = if qty_text.is_empty() {
        None
    } else {
        match Decimal::from_str_exact(&qty_text) {
            Ok(q) if q > Decimal::ZERO && q.normalize().scale() <= 9 => Some(q),
            _ => {
                page.errors.add("qty", "Enter the shares to close, like 5 or 0.5, or leave it empty to close everything.");
                None
            }
        }
    };
    let already = format!(
        "This confirmation was already sent, so nothing more of {symbol} was closed. Positions below are as Alpaca reports them now."
    );
    let Go {
        keys,
        released,
        mut page,
    } = match confirm::check(
        &state,
        &ctx,
        tx,
        &session,
        &credential,
        confirm::Submission {
            page,
            confirm_live: &form.confirm_live,
            already: &already,
        },
    )
    .await?
    {
        Ok(go) => go,
        Err(answer) => return Ok(answer),
    };
    let env = credential.environment;
    let result = within(
        &state,
        released.alpaca().close_position(env, &keys, &symbol, qty),
    )
    .await;
    drop(keys);
    match result {
        Ok(order) => {
            let amount = qty.map_or_else(|| "all".to_owned(), |q| q.to_string());
            let line = format!(
                "Closing {amount} of {symbol}: Alpaca placed a market {} order. Status: {}. Order ID: {}.",
                if order.side.is_empty() {
                    "closing"
                } else {
                    order.side.as_str()
                },
                order.status,
                order
                    .id
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "—".into())
            );
            session::set_once(&session, Once::Status, &line);
            Ok(confirm::back_to_account(&credential))
        }
        Err(AlpacaError::NotFound) => {
            page.alert = Some(format!(
                "Alpaca has no {symbol} position in this account; it may be closed already. Nothing was sent."
            ));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, *page).into_response())
        }
        Err(AlpacaError::Refused(message) | AlpacaError::Unprocessable(message)) => {
            if message.contains("qty") {
                page.errors.add("qty", format!("Alpaca: {message}"));
            }
            page.alert = Some(format!("Alpaca did not close the position: {message}"));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, *page).into_response())
        }
        Err(e) => Ok(confirm::failed(
            page,
            &e,
            "Nothing was closed.",
            "Paddock could not confirm whether the position was closed — check Positions and Open orders before trying again.",
        )),
    }
}

fn close_all_page(ctx: Ctx, credential: &Credential, token: String) -> ConfirmPage {
    let account = AccountHeader::of(credential);
    ConfirmPage {
        action: format!("/accounts/{}/positions/close-all", account.id),
        title: "Close all positions".into(),
        intro: format!(
            "Alpaca cancels every open order of {}, then closes every position with market orders, now or at the next open.",
            account.label
        ),
        button: "Close all positions",
        token,
        qty: None,
        alert: None,
        errors: FieldErrors::default(),
        account,
        ctx,
    }
}

/// `GET /accounts/{id}/positions/close-all`.
pub async fn close_all_form(
    ctx: Ctx,
    mut tx: Tx,
    Path(id): Path<CredentialId>,
) -> Result<ConfirmPage, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    Ok(close_all_page(ctx, &credential, trading::new_token()))
}

/// `POST /accounts/{id}/positions/close-all`.
pub async fn close_all(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<CredentialId>,
    Form(form): Form<CloseForm>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let page = close_all_page(ctx.clone(), &credential, form.action_token.clone());
    let already = "This confirmation was already sent, so nothing more was closed. Positions below are as Alpaca reports them now.";
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
    let result = within(&state, released.alpaca().close_all_positions(env, &keys)).await;
    drop(keys);
    match result {
        Ok(items) => {
            let closing: Vec<&str> = items
                .iter()
                .filter(|i| i.succeeded())
                .map(|i| i.symbol.as_str())
                .collect();
            let failed: Vec<String> = items
                .iter()
                .filter(|i| !i.succeeded())
                .map(|i| {
                    format!(
                        "{}: {}",
                        i.symbol,
                        i.message().unwrap_or_else(|| "no reason given".into())
                    )
                })
                .collect();
            let line = if closing.is_empty() && failed.is_empty() {
                "There were no positions to close.".to_owned()
            } else {
                format!(
                    "Open orders were canceled; Alpaca is closing {} position{}{}.",
                    closing.len(),
                    if closing.len() == 1 { "" } else { "s" },
                    if closing.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", closing.join(", "))
                    }
                )
            };
            session::set_once(&session, Once::Status, &line);
            if !failed.is_empty() {
                let alert = format!("Alpaca could not close: {}", failed.join("; "));
                session::set_once(&session, Once::Alert, &alert);
            }
            Ok(confirm::back_to_account(&credential))
        }
        Err(e) => Ok(confirm::failed(
            page,
            &e,
            "Nothing was closed.",
            "Paddock could not confirm what was closed — check Positions and Open orders before trying again.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_symbols_in_urls_are_plain_tickers() {
        assert_eq!(position_symbol("aapl").ok(), Some("AAPL".into()));
        assert_eq!(position_symbol("BRK.B").ok(), Some("BRK.B".into()));
        assert_eq!(position_symbol("BTC/USD").ok(), Some("BTC/USD".into()));
        assert_eq!(
            position_symbol("AAPL250117P00200000").ok(),
            Some("AAPL250117P00200000".into())
        );
        assert!(position_symbol("").is_err());
        assert!(position_symbol("A B").is_err());
        assert!(position_symbol("../x").is_err());
    }
}
