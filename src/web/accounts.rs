//! `/accounts/{id}`: one account, its orders, and trading.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    alpaca::{AlpacaError, Environment, Order, OrderRequest, OrderType, Side, TimeInForce},
    domain::CredentialId,
    error::AppError,
    money::money,
    portfolio::{self, Period, Totals},
    state::AppState,
    web::{
        extract::{Form, Path},
        forms::{FieldErrors, when},
        service::{UNSEAL_FAILED, describe, fetch_all, own_credential, unseal_and_release},
        session::{self, Once, Session},
        tenant::{Ctx, Tx},
        views::{ChartView, PeriodQuery, PositionRow, SummaryView},
    },
};

/// One row of an orders table.
pub struct OrderRow {
    id: String,
    submitted: String,
    symbol: String,
    side: String,
    quantity: String,
    order_type: String,
    limit_price: String,
    time_in_force: String,
    status: String,
    filled: String,
}

impl OrderRow {
    fn of(o: &Order) -> Self {
        Self {
            id: o.id.to_string(),
            submitted: when(o.submitted_at.unwrap_or(o.created_at)),
            symbol: o.symbol.clone(),
            side: capitalized(&o.side),
            quantity: o.qty.map(|q| q.to_string()).unwrap_or_default(),
            order_type: capitalized(&o.order_type),
            limit_price: o.limit_price.map(money).unwrap_or_default(),
            time_in_force: o.time_in_force.to_uppercase(),
            status: capitalized(&o.status.replace('_', " ")),
            filled: match o.filled_avg_price {
                Some(price) => format!("{} @ {}", o.filled_qty, money(price)),
                None => String::new(),
            },
        }
    }
}

/// What the order form shows.
#[derive(Clone)]
pub struct OrderValues {
    symbol: String,
    side: String,
    qty: String,
    order_type: String,
    limit_price: String,
    time_in_force: String,
}

impl Default for OrderValues {
    fn default() -> Self {
        Self {
            symbol: String::new(),
            side: "buy".into(),
            qty: String::new(),
            order_type: "market".into(),
            limit_price: String::new(),
            time_in_force: "day".into(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts/show.html")]
pub struct AccountPage {
    ctx: Ctx,
    id: String,
    label: String,
    environment: &'static str,
    environment_class: &'static str,
    live: bool,
    account_number: String,
    status: Option<String>,
    alert: Option<String>,
    summary: Option<SummaryView>,
    positions: Vec<PositionRow>,
    open_orders: Vec<OrderRow>,
    closed_orders: Vec<OrderRow>,
    chart: ChartView,
    form: OrderValues,
    errors: FieldErrors,
}

/// `GET /accounts/{id}`.
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<CredentialId>,
    Query(query): Query<PeriodQuery>,
) -> Result<AccountPage, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let period = Period::parse(query.period.as_deref());
    let credentials = std::slice::from_ref(&credential);
    let (keys, released) = unseal_and_release(&state, &ctx, tx, credentials, "portfolio").await?;
    let mut results = fetch_all(&state, &released, credentials, keys, period, true).await?;
    let status = session::take_once(&session, Once::Status);
    let mut alert = session::take_once(&session, Once::Alert);
    let mut page = AccountPage {
        id: credential.id.to_string(),
        label: credential.label.clone(),
        environment: credential.environment.label(),
        environment_class: credential.environment.as_str(),
        live: credential.environment == Environment::Live,
        account_number: credential.account_number.clone(),
        status,
        alert: None,
        summary: None,
        positions: Vec::new(),
        open_orders: Vec::new(),
        closed_orders: Vec::new(),
        chart: ChartView::of(&[], period),
        form: OrderValues::default(),
        errors: FieldErrors::default(),
        ctx,
    };
    match results.pop() {
        Some(Ok(snapshot)) => {
            page.summary = Some(SummaryView::of(&Totals::of([&snapshot.account])));
            page.positions = snapshot
                .positions
                .iter()
                .map(|p| PositionRow::of(&credential.label, p))
                .collect();
            if let Some(orders) = &snapshot.orders {
                page.open_orders = orders.open.iter().map(OrderRow::of).collect();
                page.closed_orders = orders.closed.iter().map(OrderRow::of).collect();
            }
            let series: Vec<_> = portfolio::combine_history([snapshot.history.as_slice()]);
            page.chart = ChartView::of(&series, period);
        }
        Some(Err(message)) => {
            alert = Some(alert.map_or(message.clone(), |a| format!("{a} {message}")))
        }
        None => {}
    }
    page.alert = alert;
    Ok(page)
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts/order.html")]
pub struct OrderPage {
    ctx: Ctx,
    id: String,
    label: String,
    environment: &'static str,
    environment_class: &'static str,
    live: bool,
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
    order_type: String,
    limit_price: String,
    time_in_force: String,
    confirm_live: Option<String>,
}

fn parse_order(form: &OrderForm, live: bool, errors: &mut FieldErrors) -> Option<OrderRequest> {
    let symbol = form.symbol.trim().to_uppercase();
    if symbol.is_empty()
        || symbol.len() > 10
        || !symbol.chars().all(|c| c.is_ascii_uppercase() || c == '.')
    {
        errors.add(
            "symbol",
            "Enter a ticker symbol like AAPL (letters and dots, up to 10).",
        );
    }
    let side = Side::parse(&form.side);
    if side.is_none() {
        errors.add("side", "Choose Buy or Sell.");
    }
    let qty = Decimal::from_str_exact(form.qty.trim()).ok();
    match qty {
        Some(q) if q > Decimal::ZERO && q.scale() <= 9 => {}
        _ => errors.add("qty", "Enter a quantity greater than 0, like 10 or 0.5."),
    }
    let order_type = OrderType::parse(&form.order_type);
    if order_type.is_none() {
        errors.add("order_type", "Choose Market or Limit.");
    }
    let limit_text = form.limit_price.trim();
    let limit_price = match (order_type, limit_text.is_empty()) {
        (Some(OrderType::Limit), true) => {
            errors.add("limit_price", "A limit order needs a limit price.");
            None
        }
        (Some(OrderType::Market), false) => {
            errors.add(
                "limit_price",
                "A market order takes no limit price; clear it or choose Limit.",
            );
            None
        }
        (Some(OrderType::Limit), false) => {
            match Decimal::from_str_exact(limit_text.trim_start_matches('$')) {
                Ok(p) if p > Decimal::ZERO => Some(p),
                _ => {
                    errors.add(
                        "limit_price",
                        "Enter a limit price greater than 0, like 187.50.",
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let time_in_force = TimeInForce::parse(&form.time_in_force);
    if time_in_force.is_none() {
        errors.add("time_in_force", "Choose Day or GTC.");
    }
    if live && form.confirm_live.is_none() {
        errors.add(
            "confirm_live",
            "Tick the box to confirm this order uses real money.",
        );
    }
    if !errors.is_empty() {
        return None;
    }
    Some(OrderRequest {
        symbol,
        qty: qty?,
        side: side?,
        order_type: order_type?,
        time_in_force: time_in_force?,
        limit_price,
    })
}

/// `POST /accounts/{id}/orders`.
pub async fn place_order(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path(id): Path<CredentialId>,
    Form(form): Form<OrderForm>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let live = credential.environment == Environment::Live;
    let mut errors = FieldErrors::default();
    let request = parse_order(&form, live, &mut errors);
    let values = OrderValues {
        symbol: form.symbol.trim().to_uppercase(),
        side: form.side.clone(),
        qty: form.qty.trim().to_owned(),
        order_type: form.order_type.clone(),
        limit_price: form.limit_price.trim().to_owned(),
        time_in_force: form.time_in_force.clone(),
    };
    let page = |ctx: Ctx, errors: FieldErrors, alert: Option<String>, status: StatusCode| {
        (
            status,
            OrderPage {
                ctx,
                id: credential.id.to_string(),
                label: credential.label.clone(),
                environment: credential.environment.label(),
                environment_class: credential.environment.as_str(),
                live,
                alert,
                form: values.clone(),
                errors,
            },
        )
            .into_response()
    };
    let Some(request) = request else {
        return Ok(page(ctx, errors, None, StatusCode::UNPROCESSABLE_ENTITY));
    };
    let (unsealed, released) =
        unseal_and_release(&state, &ctx, tx, std::slice::from_ref(&credential), "order").await?;
    let Some(keys) = unsealed.into_iter().flatten().next() else {
        return Ok(page(
            ctx,
            errors,
            Some(UNSEAL_FAILED.into()),
            StatusCode::CONFLICT,
        ));
    };
    let placed = released
        .alpaca()
        .place_order(credential.environment, &keys, &request)
        .await;
    drop(keys);
    match placed {
        Ok(order) => {
            tracing::info!(order_id = %order.id, status = %order.status, "order placed");
            session::set_once(&session, Once::Status, &order_summary(&request, &order));
            Ok(Redirect::to(&format!("/accounts/{}", credential.id)).into_response())
        }
        Err(e @ (AlpacaError::Refused(_) | AlpacaError::Unprocessable(_))) => Ok(page(
            ctx,
            errors,
            Some(e.user_message()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Err(e) => {
            let status = if matches!(e, AlpacaError::Rejected) {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Ok(page(ctx, errors, Some(describe(&e)), status))
        }
    }
}

/// "Limit order placed: buy 3 AAPL at $101.25, good till canceled. Status: new. Order ID: …."
fn order_summary(request: &OrderRequest, order: &Order) -> String {
    let (kind, price) = match request.limit_price {
        Some(p) => ("Limit", format!(" at {}", money(p))),
        None => ("Market", String::new()),
    };
    let tif = match request.time_in_force {
        TimeInForce::Day => "for the day",
        TimeInForce::Gtc => "good till canceled",
    };
    format!(
        "{kind} order placed: {} {} {}{price}, {tif}. Status: {}. Order ID: {}.",
        request.side.as_str(),
        request.qty,
        request.symbol,
        order.status,
        order.id
    )
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `POST /accounts/{id}/orders/{order_id}/cancel`.
pub async fn cancel_order(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    session: Session,
    Path((id, order_id)): Path<(CredentialId, Uuid)>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let back = Redirect::to(&format!("/accounts/{}", credential.id)).into_response();
    let (unsealed, released) =
        unseal_and_release(&state, &ctx, tx, std::slice::from_ref(&credential), "order").await?;
    let Some(keys) = unsealed.into_iter().flatten().next() else {
        session::set_once(&session, Once::Alert, UNSEAL_FAILED);
        return Ok(back);
    };
    let result = released
        .alpaca()
        .cancel_order(credential.environment, &keys, order_id)
        .await;
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
