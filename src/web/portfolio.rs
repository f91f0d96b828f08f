//! `/portfolio`: every account of the member, fetched concurrently; a failing
//! account degrades only its own card.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Query, State},
    response::{IntoResponse, Response},
};

use crate::{
    error::AppError,
    money::{sign_class, signed_money},
    portfolio::{self, Period, Snapshot, Totals},
    state::AppState,
    web::{
        reads::load_accounts,
        tenant::{Credentials, Ctx, Released},
        views::{ChartView, DASH, PeriodQuery, PositionsView, SummaryView, money_or_dash},
    },
};

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

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/show.html")]
pub struct PortfolioPage {
    ctx: Ctx,
    summary: SummaryView,
    answered: usize,
    cards: Vec<CardView>,
    positions: PositionsView,
    chart: ChartView,
}

#[derive(Template, WebTemplate)]
#[template(path = "portfolio/empty.html")]
pub struct EmptyPortfolio {
    ctx: Ctx,
}

/// `GET /portfolio` (no transaction: see `tenant::require_member_lazily`).
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    mut released: Released,
    shown: Credentials,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, AppError> {
    let credentials = shown.list();
    if credentials.is_empty() {
        return Ok(EmptyPortfolio { ctx }.into_response());
    }
    let period = Period::parse(query.period.as_deref());
    let results = load_accounts(&state, &ctx, &mut released, &shown, period, false).await?;

    let snapshots: Vec<&Snapshot> = results.iter().filter_map(|r| r.as_deref().ok()).collect();
    let totals = Totals::of(snapshots.iter().map(|s| &s.account));
    let history = portfolio::combine_history(snapshots.iter().map(|s| s.history.as_slice()));
    let mut positions: Vec<(&str, &crate::alpaca::Position)> = Vec::new();
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
                let change = s.account.day_change();
                card.equity = money_or_dash(s.account.equity());
                card.day_change = change.map_or_else(|| DASH.to_owned(), signed_money);
                card.day_class = change.map_or("", sign_class);
                card.status = s.account.status.clone();
                positions.extend(s.positions.iter().map(|p| (credential.label.as_str(), p)));
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
        positions: PositionsView::of(positions, None),
        chart: ChartView::of(&history, period),
    }
    .into_response())
}
