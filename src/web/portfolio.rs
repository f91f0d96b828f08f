//! `/portfolio`: every account of the member, fetched concurrently; a failing
//! account degrades only its own card.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::{
    alpaca::{AlpacaError, ApiKeys, Environment, Position},
    chart::{self, Chart},
    db::{self, credentials::Credential},
    error::AppError,
    money::{money, percent, sign_class, signed_money},
    portfolio::{self, Period, Snapshot, Totals},
    state::AppState,
    vault::{self, UnsealError},
    web::tenant::{Ctx, Tx},
};

/// The `?period=` query.
#[derive(Deserialize)]
pub struct PeriodQuery {
    pub period: Option<String>,
}

/// The `<dl>` of totals.
pub struct SummaryView {
    pub equity: String,
    pub cash: String,
    pub buying_power: String,
    pub day_change: String,
    /// `(+0.66%)`, or empty when yesterday's equity was zero.
    pub day_change_pct: String,
    pub day_class: &'static str,
}

impl SummaryView {
    pub fn of(totals: &Totals) -> Self {
        let pct = totals
            .day_change_pct()
            .map(|p| format!("({})", percent(p)))
            .unwrap_or_default();
        Self {
            equity: money(totals.equity),
            cash: money(totals.cash),
            buying_power: money(totals.buying_power),
            day_change: signed_money(totals.day_change),
            day_change_pct: pct,
            day_class: sign_class(totals.day_change),
        }
    }
}

/// One row of the Positions table.
pub struct PositionRow {
    pub account: String,
    pub symbol: String,
    pub quantity: String,
    pub avg_entry: String,
    pub current_price: String,
    pub market_value: String,
    pub unrealized: String,
    pub unrealized_class: &'static str,
}

impl PositionRow {
    pub fn of(account: &str, p: &Position) -> Self {
        Self {
            account: account.to_owned(),
            symbol: p.symbol.clone(),
            quantity: p.qty.to_string(),
            avg_entry: money(p.avg_entry_price),
            current_price: money(p.current_price),
            market_value: money(p.market_value),
            unrealized: signed_money(p.unrealized_pl),
            unrealized_class: sign_class(p.unrealized_pl),
        }
    }
}

/// One link of the period picker.
pub struct PeriodLink {
    pub value: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The chart with its period links.
pub struct ChartView {
    pub chart: Option<Chart>,
    pub period_label: &'static str,
    pub links: Vec<PeriodLink>,
}

impl ChartView {
    pub fn of(series: &[(time::Date, Decimal)], period: Period) -> Self {
        Self {
            chart: chart::build(series),
            period_label: period.label(),
            links: Period::ALL
                .into_iter()
                .map(|p| PeriodLink {
                    value: p.as_str(),
                    label: p.label(),
                    current: p == period,
                })
                .collect(),
        }
    }
}

/// A card per account.
pub struct CardView {
    pub id: String,
    pub label: String,
    pub environment: &'static str,
    pub environment_class: &'static str,
    pub account_number: String,
    pub equity: String,
    pub day_change: String,
    pub day_class: &'static str,
    pub status: String,
    pub error: Option<String>,
}

/// The outcome of one account's fetch.
pub type Fetched = Result<Snapshot, String>;

/// Shown instead of an account's data when its stored keys do not open.
pub const UNSEAL_FAILED: &str =
    "The stored keys for this account could not be unsealed. Rotate or re-enroll them.";

/// Unseals each credential for `purpose`, records each use, then commits the
/// request's transaction, so no pooled connection or row lock is held while the
/// caller waits for Alpaca. `None` where the stored keys do not open.
pub async fn unseal_and_release(
    state: &AppState,
    ctx: &Ctx,
    mut tx: Tx,
    credentials: &[Credential],
    purpose: &str,
) -> Result<Vec<Option<ApiKeys>>, AppError> {
    let mut keys = Vec::with_capacity(credentials.len());
    for credential in credentials {
        match vault::unseal_for(
            &mut tx,
            state.sealer.as_ref(),
            credential,
            purpose,
            &ctx.origin,
        )
        .await
        {
            Ok(pair) => keys.push(Some(pair)),
            Err(UnsealError::Seal(_)) => keys.push(None),
            Err(UnsealError::Database(e)) => return Err(e.into()),
        }
    }
    tx.finish().await?;
    Ok(keys)
}

/// Fetches every account concurrently with its unsealed keys, which each task
/// consumes (and drops) as soon as its calls finish.
pub async fn fetch_all(
    state: &AppState,
    credentials: &[Credential],
    keys: Vec<Option<ApiKeys>>,
    period: Period,
    with_orders: bool,
) -> Result<Vec<Fetched>, AppError> {
    let tasks: Vec<_> = credentials
        .iter()
        .zip(keys)
        .map(|(credential, keys)| {
            let client = state.alpaca.clone();
            let environment: Environment = credential.environment;
            let deadline = state.settings.alpaca_deadline;
            keys.map(|keys| {
                tokio::spawn(async move {
                    portfolio::fetch(&client, environment, keys, period, with_orders, deadline)
                        .await
                })
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(match task {
            None => Err(UNSEAL_FAILED.to_owned()),
            Some(handle) => match handle.await {
                Ok(Ok(snapshot)) => Ok(snapshot),
                Ok(Err(e)) => Err(describe(&e)),
                Err(e) => return Err(e.into()),
            },
        });
    }
    Ok(results)
}

/// The person-facing message for an Alpaca failure.
pub fn describe(e: &AlpacaError) -> String {
    tracing::warn!(error = e.kind(), "Alpaca call failed");
    e.user_message()
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/show.html")]
pub struct PortfolioPage {
    ctx: Ctx,
    summary: SummaryView,
    answered: usize,
    cards: Vec<CardView>,
    positions: Vec<PositionRow>,
    chart: ChartView,
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/empty.html")]
pub struct EmptyPortfolio {
    ctx: Ctx,
}

/// `GET /portfolio`.
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, AppError> {
    let credentials = db::credentials::list(&mut tx).await?;
    if credentials.is_empty() {
        return Ok(EmptyPortfolio { ctx }.into_response());
    }
    let period = Period::parse(query.period.as_deref());
    let keys = unseal_and_release(&state, &ctx, tx, &credentials, "portfolio").await?;
    let results = fetch_all(&state, &credentials, keys, period, false).await?;

    let snapshots: Vec<&Snapshot> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let totals = Totals::of(snapshots.iter().map(|s| &s.account));
    let history = portfolio::combine_history(snapshots.iter().map(|s| s.history.as_slice()));
    let mut positions = Vec::new();
    let mut cards = Vec::new();
    for (credential, result) in credentials.iter().zip(&results) {
        let mut card = CardView {
            id: credential.id.to_string(),
            label: credential.label.clone(),
            environment: credential.environment.label(),
            environment_class: credential.environment.as_str(),
            account_number: credential.account_number.clone(),
            equity: String::new(),
            day_change: String::new(),
            day_class: "",
            status: String::new(),
            error: None,
        };
        match result {
            Ok(s) => {
                let change = s.account.equity - s.account.last_equity;
                card.equity = money(s.account.equity);
                card.day_change = signed_money(change);
                card.day_class = sign_class(change);
                card.status = s.account.status.clone();
                positions.extend(
                    s.positions
                        .iter()
                        .map(|p| PositionRow::of(&credential.label, p)),
                );
            }
            Err(message) => card.error = Some(message.clone()),
        }
        cards.push(card);
    }
    Ok(PortfolioPage {
        ctx,
        summary: SummaryView::of(&totals),
        answered: snapshots.len(),
        cards,
        positions,
        chart: ChartView::of(&history, period),
    }
    .into_response())
}
