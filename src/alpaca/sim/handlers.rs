//! The simulator's endpoints. Each runs after [`super::faults::gate`], which
//! put the [`Caller`] into the request.

use axum::{
    Extension,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::{Duration as TimeDuration, OffsetDateTime, Time};
use uuid::Uuid;

use crate::alpaca::sim::faults::{Caller, Fault, hang};
use crate::alpaca::sim::validate::{Refusal, query_decimal, text_field, unprocessable, validate};
use crate::alpaca::sim::{Ctx, RecordedOrder, api_error, data, lock};
use crate::eastern;

fn refused(r: Refusal) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    api_error(status, r.code, &r.message)
}

fn json(value: Value) -> Response {
    axum::Json(value).into_response()
}

pub async fn account(State(ctx): State<Ctx>, Extension(c): Extension<Caller>) -> Response {
    json(ctx.sim.with_account(ctx.env, &c.stem, |a| a.account_json()))
}

pub async fn positions(State(ctx): State<Ctx>, Extension(c): Extension<Caller>) -> Response {
    json(
        ctx.sim
            .with_account(ctx.env, &c.stem, |a| a.positions_json()),
    )
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    direction: Option<String>,
    nested: Option<String>,
}

pub async fn list_orders(
    State(ctx): State<Ctx>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Response {
    let status = q.status.as_deref().unwrap_or("open");
    if !matches!(status, "open" | "closed" | "all") {
        return refused(unprocessable("invalid status"));
    }
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => return refused(unprocessable("invalid limit")),
    };
    let ascending = match q.direction.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return refused(unprocessable("invalid direction")),
    };
    let nested = q.nested.as_deref() == Some("true");
    json(ctx.sim.with_account(ctx.env, &c.stem, |a| {
        a.list_orders(status, limit, ascending, nested)
    }))
}

#[derive(Deserialize)]
pub struct ClientIdQuery {
    client_order_id: Option<String>,
}

pub async fn by_client_order_id(
    State(ctx): State<Ctx>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ClientIdQuery>,
) -> Response {
    if c.fault == Fault::Dark {
        return hang().await;
    }
    let Some(id) = q.client_order_id else {
        return refused(unprocessable("client_order_id is required"));
    };
    match ctx
        .sim
        .with_account(ctx.env, &c.stem, |a| a.by_client_order_id(&id))
    {
        Ok(body) => json(body),
        Err(r) => refused(r),
    }
}

pub async fn post_order(
    State(ctx): State<Ctx>,
    Extension(c): Extension<Caller>,
    raw: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&raw).ok();
    let body = parsed
        .clone()
        .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    let now = OffsetDateTime::now_utc();
    let (account_number, response) = ctx.sim.with_account(ctx.env, &c.stem, |account| {
        let response = match parsed.as_ref() {
            None => api_error(
                StatusCode::BAD_REQUEST,
                40010000,
                "request body format is invalid",
            ),
            Some(value) => match validate(value, |s| account.price(s)) {
                Err(r) => refused(r),
                Ok(order) => match account.place(order, now) {
                    Ok(order) => json(order),
                    Err(r) => refused(r),
                },
            },
        };
        (account.account_number.clone(), response)
    });
    lock(&ctx.sim.inner.recorded).push(RecordedOrder {
        env: ctx.env,
        account_number,
        status: response.status().as_u16(),
        symbol: text_field(&body, "symbol"),
        side: text_field(&body, "side"),
        qty: text_field(&body, "qty"),
        order_type: text_field(&body, "type"),
        time_in_force: text_field(&body, "time_in_force"),
        limit_price: text_field(&body, "limit_price"),
        body,
    });
    if matches!(c.fault, Fault::Lost | Fault::Dark) {
        return hang().await;
    }
    response
}

pub async fn cancel_order(
    State(ctx): State<Ctx>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return api_error(StatusCode::NOT_FOUND, 40410000, "order not found");
    };
    let now = OffsetDateTime::now_utc();
    match ctx
        .sim
        .with_account(ctx.env, &c.stem, |a| a.cancel(id, now))
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => refused(r),
    }
}

pub async fn cancel_all(State(ctx): State<Ctx>, Extension(c): Extension<Caller>) -> Response {
    let now = OffsetDateTime::now_utc();
    let results = ctx
        .sim
        .with_account(ctx.env, &c.stem, |a| a.cancel_all(now));
    (StatusCode::MULTI_STATUS, axum::Json(results)).into_response()
}

#[derive(Deserialize)]
pub struct CloseQuery {
    qty: Option<String>,
    percentage: Option<String>,
    cancel_orders: Option<String>,
}

pub async fn close_position(
    State(ctx): State<Ctx>,
    Extension(c): Extension<Caller>,
    Path(symbol): Path<String>,
    Query(q): Query<CloseQuery>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let result = query_decimal(q.qty.as_deref()).and_then(|qty| {
        let percentage = query_decimal(q.percentage.as_deref())?;
        ctx.sim.with_account(ctx.env, &c.stem, |a| {
            a.close_position(&symbol, qty, percentage, now)
        })
    });
    match result {
        Ok(order) => json(order),
        Err(r) => refused(r),
    }
}

pub async fn close_all(
    State(ctx): State<Ctx>,
    Extension(c): Extension<Caller>,
    Query(q): Query<CloseQuery>,
) -> Response {
    let cancel = q.cancel_orders.as_deref() == Some("true");
    let now = OffsetDateTime::now_utc();
    let results = ctx
        .sim
        .with_account(ctx.env, &c.stem, |a| a.close_all(cancel, now));
    (StatusCode::MULTI_STATUS, axum::Json(results)).into_response()
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    period: Option<String>,
    timeframe: Option<String>,
}

fn period_points(period: &str) -> Option<usize> {
    let split = period.len().checked_sub(1)?;
    let (n, unit) = period.split_at(split);
    let n: usize = n.parse().ok().filter(|n| *n > 0)?;
    let per = match unit {
        "D" => 1,
        "W" => 5,
        "M" => 21,
        "A" => 252,
        _ => return None,
    };
    Some((n * per).min(2520))
}

pub async fn history(
    State(ctx): State<Ctx>,
    Extension(c): Extension<Caller>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let Some(points) = period_points(q.period.as_deref().unwrap_or("1M")) else {
        return refused(unprocessable("invalid period"));
    };
    if q.timeframe.as_deref().unwrap_or("1D") != "1D" {
        return refused(unprocessable("invalid timeframe"));
    }
    let now = OffsetDateTime::now_utc();
    json(
        ctx.sim
            .with_account(ctx.env, &c.stem, |a| a.history_json(points, now)),
    )
}

#[derive(Deserialize)]
pub struct ActivitiesQuery {
    page_size: Option<String>,
    page_token: Option<String>,
    direction: Option<String>,
}

pub async fn activities(
    State(ctx): State<Ctx>,
    Extension(c): Extension<Caller>,
    Query(q): Query<ActivitiesQuery>,
) -> Response {
    let size = match q.page_size.as_deref().map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return refused(unprocessable("invalid page_size")),
    };
    if q.direction.as_deref().is_some_and(|d| d != "desc") {
        return refused(unprocessable(
            "the simulator lists activities newest first only",
        ));
    }
    json(ctx.sim.with_account(ctx.env, &c.stem, |a| {
        a.activities_page(size, q.page_token.as_deref())
    }))
}

pub async fn asset(State(_ctx): State<Ctx>, Path(symbol): Path<String>) -> Response {
    let Some(info) = data::asset(&symbol) else {
        return api_error(StatusCode::NOT_FOUND, 40410000, "asset not found");
    };
    json(json!({
        "id": data::asset_id(info.symbol),
        "class": "us_equity",
        "exchange": info.exchange,
        "symbol": info.symbol,
        "name": info.name,
        "status": if info.tradable { "active" } else { "inactive" },
        "tradable": info.tradable,
        "marginable": info.tradable,
        "shortable": info.tradable,
        "easy_to_borrow": info.tradable,
        "fractionable": info.fractionable,
        "maintenance_margin_requirement": 30,
        "attributes": if info.fractionable { json!(["fractional_eh_enabled"]) } else { json!([]) }
    }))
}

/// `GET /v2/clock`: regular hours 9:30–16:00 US/Eastern on weekdays (no holidays).
pub async fn clock() -> Response {
    json(clock_json(OffsetDateTime::now_utc()))
}

/// The clock's body at `now`.
pub fn clock_json(now: OffsetDateTime) -> Value {
    let open_at =
        |date| eastern::eastern_instant(date, Time::from_hms(9, 30, 0).unwrap_or(Time::MIDNIGHT));
    let close_at =
        |date| eastern::eastern_instant(date, Time::from_hms(16, 0, 0).unwrap_or(Time::MIDNIGHT));
    let today = eastern::to_eastern(now).date();
    let is_open = eastern::is_weekday(today) && now >= open_at(today) && now < close_at(today);
    let mut day = today;
    let next_open = loop {
        if eastern::is_weekday(day) && open_at(day) > now {
            break open_at(day);
        }
        day += TimeDuration::days(1);
    };
    let mut day = today;
    let next_close = loop {
        if eastern::is_weekday(day) && close_at(day) > now {
            break close_at(day);
        }
        day += TimeDuration::days(1);
    };
    let local = |t: OffsetDateTime| {
        eastern::to_eastern(t)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    json!({
        "timestamp": local(now),
        "is_open": is_open,
        "next_open": local(next_open),
        "next_close": local(next_close)
    })
}

#[derive(Deserialize)]
pub struct PriceQuery {
    symbol: String,
    price: String,
}

/// `POST /sim/price?symbol=…&price=…`: moves a price (and triggers the orders it reaches).
pub async fn set_price(State(ctx): State<Ctx>, Query(q): Query<PriceQuery>) -> Response {
    match crate::alpaca::models::lenient::parse_decimal(&q.price) {
        Some(price) if price > rust_decimal::Decimal::ZERO && data::price(&q.symbol).is_some() => {
            ctx.sim.set_price(&q.symbol, price);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => refused(unprocessable("give a known symbol and a price > 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_clock_is_open_in_regular_hours_only() {
        let open = clock_json(datetime!(2026-12-01 15:00 UTC));
        assert_eq!(open["is_open"], true);
        assert_eq!(open["next_close"], "2026-12-01T16:00:00-05:00");
        let friday_night = clock_json(datetime!(2026-12-05 02:00 UTC));
        assert_eq!(friday_night["is_open"], false);
        assert_eq!(friday_night["next_open"], "2026-12-07T09:30:00-05:00");
        let summer = clock_json(datetime!(2026-07-01 12:00 UTC));
        assert_eq!(summer["is_open"], false);
        assert_eq!(summer["next_open"], "2026-07-01T09:30:00-04:00");
    }
}
