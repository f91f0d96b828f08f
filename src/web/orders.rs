//! Placing orders: `POST /accounts/{id}/orders`.
//!
//! Exactly once: every rendered order form carries a single-use token, and
//! the order's `client_order_id` is derived from it, so a form submitted
//! twice (double click, back button, retry) is one order to Alpaca, which
//! refuses the second with a 422; Paddock then looks the first one up and
//! shows it. When Alpaca does not answer in time, Paddock looks the order up
//! by its `client_order_id` before saying anything.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    alpaca::{AlpacaError, ApiKeys, Order, OrderRequest},
    db::credentials::Credential,
    domain::CredentialId,
    error::AppError,
    state::AppState,
    trading::{self, checks, form::OrderInput},
    vault::Purpose,
    web::{
        extract::{Form, Path},
        forms::FieldErrors,
        service::{
            LiveConfirmation, UNSEAL_FAILED, describe, failure_status, live_action_allowed,
            own_credential, unseal_and_release, within,
        },
        session::{self, Once, Session},
        tenant::{Ctx, Released, Tx},
        trading_views::{AccountHeader, OrderValues},
    },
};

/// Said, in `role="alert"`, when Alpaca's answer about an order never came.
pub const UNCONFIRMED: &str =
    "Paddock could not confirm this order with Alpaca — check Open orders before trying again";

#[derive(Template, WebTemplate)]
#[template(path = "accounts/order.html")]
pub struct OrderPage {
    ctx: Ctx,
    account: AccountHeader,
    alert: Option<String>,
    form: OrderValues,
    errors: FieldErrors,
}

/// The order form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OrderForm {
    symbol: String,
    side: String,
    qty: String,
    notional: String,
    order_type: String,
    limit_price: String,
    stop_price: String,
    trail_percent: String,
    trail_amount: String,
    time_in_force: String,
    extended_hours: Option<String>,
    take_profit: String,
    stop_loss: String,
    confirm_live: Option<String>,
    order_token: String,
}

impl OrderForm {
    fn input(&self) -> OrderInput {
        let t = |s: &str| s.trim().to_owned();
        OrderInput {
            symbol: self.symbol.trim().to_uppercase(),
            side: t(&self.side),
            qty: t(&self.qty),
            notional: t(&self.notional),
            order_type: t(&self.order_type),
            limit_price: t(&self.limit_price),
            stop_price: t(&self.stop_price),
            trail_percent: t(&self.trail_percent),
            trail_amount: t(&self.trail_amount),
            time_in_force: t(&self.time_in_force),
            extended_hours: self.extended_hours.is_some(),
            take_profit: t(&self.take_profit),
            stop_loss: t(&self.stop_loss),
        }
    }
}

impl OrderPage {
    fn respond(
        ctx: Ctx,
        credential: &Credential,
        form: OrderValues,
        errors: FieldErrors,
        alert: Option<String>,
        status: StatusCode,
    ) -> Response {
        let page = Self {
            ctx,
            account: AccountHeader::of(credential),
            alert,
            form,
            errors,
        };
        (status, page).into_response()
    }
}

/// `POST /accounts/{id}/orders`.
pub async fn place(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<CredentialId>,
    Form(form): Form<OrderForm>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let input = form.input();
    let mut values = OrderValues {
        input: input.clone(),
        token: form.order_token.clone(),
    };
    let mut errors = FieldErrors::default();
    let checked = trading::form::check(&input);
    if let Err(problems) = &checked {
        for (field, message) in problems {
            errors.add(*field, message.clone());
        }
    }
    let confirmation = LiveConfirmation::of_checkbox(&form.confirm_live);
    if let Some((field, message)) = live_action_allowed(
        &ctx,
        &credential,
        confirmation,
        &format!("/accounts/{}", credential.id),
    )? {
        errors.add(field, message);
    }
    if !trading::valid_token(&form.order_token) {
        values.token = trading::new_token();
        let alert = "This order form carried no valid order token, so Paddock could not make sure it is sent only once. Nothing was sent to Alpaca: check the order and press Place order again.";
        return Ok(OrderPage::respond(
            ctx,
            &credential,
            values,
            errors,
            Some(alert.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let (Ok(mut request), true) = (checked, errors.is_empty()) else {
        return Ok(OrderPage::respond(
            ctx,
            &credential,
            values,
            errors,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    };
    request.client_order_id = trading::client_order_id(&form.order_token, credential.id);

    let (unsealed, released) = unseal_and_release(
        &state,
        &ctx,
        tx,
        std::slice::from_ref(&credential),
        Purpose::Order,
    )
    .await?;
    let Some(keys) = unsealed.into_iter().flatten().next() else {
        return Ok(OrderPage::respond(
            ctx,
            &credential,
            values,
            errors,
            Some(UNSEAL_FAILED.into()),
            StatusCode::CONFLICT,
        ));
    };
    if let Err((status, field, message)) =
        precheck(&state, &released, &credential, &keys, &request).await
    {
        match field {
            Some(field) => errors.add(field, message),
            None => {
                return Ok(OrderPage::respond(
                    ctx,
                    &credential,
                    values,
                    errors,
                    Some(message),
                    status,
                ));
            }
        }
        return Ok(OrderPage::respond(
            ctx,
            &credential,
            values,
            errors,
            None,
            status,
        ));
    }

    let env = credential.environment;
    let placed = within(&state, released.alpaca().place_order(env, &keys, &request)).await;
    let outcome = match placed {
        Ok(order) => Outcome::Placed(order),
        Err(AlpacaError::Unprocessable(message)) => {
            // A second submission of the same form: Alpaca refuses the reused
            // client_order_id, and the first order is what the member wants to see.
            match lookup(&state, &released, &credential, &keys, &request).await {
                Some(order) => Outcome::AlreadyPlaced(order),
                None => Outcome::Refused(message),
            }
        }
        Err(AlpacaError::Refused(message)) => Outcome::Refused(message),
        Err(e @ (AlpacaError::Rejected | AlpacaError::RateLimited | AlpacaError::NotFound)) => {
            Outcome::Failed(e)
        }
        Err(e @ (AlpacaError::Unavailable(_) | AlpacaError::Unreadable(_))) => {
            tracing::warn!(
                error = e.kind(),
                "order placement unconfirmed; looking it up"
            );
            match lookup(&state, &released, &credential, &keys, &request).await {
                Some(order) => Outcome::LateButPlaced(order),
                None => Outcome::Unconfirmed,
            }
        }
    };
    drop(keys);
    let back = Redirect::to(&format!("/accounts/{}", credential.id)).into_response();
    let (what, details) = trading::describe(&request);
    let placed_line = |order: &Order| {
        format!(
            "{what} order placed: {details}. Status: {}. Order ID: {}.",
            order.status,
            order
                .id
                .map(|i| i.to_string())
                .unwrap_or_else(|| "—".into())
        )
    };
    match outcome {
        Outcome::Placed(order) => {
            tracing::info!(order_id = ?order.id, status = %order.status, "order placed");
            session::set_once(&session, Once::Status, &placed_line(&order));
            Ok(back)
        }
        Outcome::AlreadyPlaced(order) => {
            let line = format!(
                "This order form was sent more than once; Alpaca has it once. {}",
                placed_line(&order)
            );
            session::set_once(&session, Once::Status, &line);
            Ok(back)
        }
        Outcome::LateButPlaced(order) => {
            let line = format!(
                "Alpaca answered late, but it has the order. {}",
                placed_line(&order)
            );
            session::set_once(&session, Once::Status, &line);
            Ok(back)
        }
        Outcome::Refused(message) => {
            if let Some(field) = checks::field_of_refusal(&message) {
                errors.add(field, format!("Alpaca: {message}"));
            }
            values.token = trading::new_token();
            let alert = AlpacaError::Refused(message).user_message();
            Ok(OrderPage::respond(
                ctx,
                &credential,
                values,
                errors,
                Some(alert),
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Outcome::Failed(e) => {
            let status = failure_status(&e);
            Ok(OrderPage::respond(
                ctx,
                &credential,
                values,
                errors,
                Some(describe(&e)),
                status,
            ))
        }
        Outcome::Unconfirmed => Ok(OrderPage::respond(
            ctx,
            &credential,
            values,
            errors,
            Some(UNCONFIRMED.into()),
            StatusCode::SERVICE_UNAVAILABLE,
        )),
    }
}

enum Outcome {
    Placed(Order),
    AlreadyPlaced(Order),
    LateButPlaced(Order),
    Refused(String),
    Failed(AlpacaError),
    Unconfirmed,
}

/// The checks that need Alpaca, before anything is sent: the asset, and for a
/// market order with exits, their prices against the last price. `Err` has
/// the page status, the field (if the problem is one field's) and the message.
async fn precheck(
    state: &AppState,
    released: &Released,
    credential: &Credential,
    keys: &ApiKeys,
    request: &OrderRequest,
) -> Result<(), (StatusCode, Option<&'static str>, String)> {
    let env = credential.environment;
    let asset = match within(state, released.alpaca().asset(env, keys, &request.symbol)).await {
        Ok(asset) => Some(asset),
        Err(AlpacaError::NotFound) => None,
        Err(e) => {
            let message = format!("{}. Nothing was sent to Alpaca.", describe(&e));
            return Err((failure_status(&e), None, message));
        }
    };
    checks::asset(request, asset.as_ref())
        .map_err(|(field, message)| (StatusCode::UNPROCESSABLE_ENTITY, Some(field), message))?;
    if checks::needs_last_price(request)
        && let Ok(positions) = within(state, released.alpaca().positions(env, keys)).await
        && let Some(last) = checks::last_price(request, &positions)
    {
        checks::exits_against(request, last)
            .map_err(|(field, message)| (StatusCode::UNPROCESSABLE_ENTITY, Some(field), message))?;
    }
    Ok(())
}

/// The order Alpaca has under this request's `client_order_id`, if it answers.
async fn lookup(
    state: &AppState,
    released: &Released,
    credential: &Credential,
    keys: &ApiKeys,
    request: &OrderRequest,
) -> Option<Order> {
    let env = credential.environment;
    let found = within(
        state,
        released
            .alpaca()
            .order_by_client_id(env, keys, &request.client_order_id),
    )
    .await;
    match found {
        Ok(order) => Some(order),
        Err(e) => {
            tracing::info!(error = e.kind(), "no order found by its client order id");
            None
        }
    }
}
