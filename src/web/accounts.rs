//! `/accounts/{id}`: one account: totals, the market clock, the order form,
//! positions (each with Close), open and recent orders, and the chart.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};

use crate::{
    domain::CredentialId,
    error::AppError,
    portfolio::{self, Period, Totals},
    state::AppState,
    web::{
        extract::Path,
        forms::FieldErrors,
        reads::load_accounts,
        session::{self, Once, Session},
        tenant::{Credentials, Ctx, Released},
        trading_views::{AccountHeader, OrderRow, OrderValues, order_rows},
        views::{ChartView, PeriodQuery, PositionsView, SummaryView, clock_text},
    },
};

#[derive(Template, WebTemplate)]
#[template(path = "accounts/show.html")]
pub struct AccountPage {
    ctx: Ctx,
    account: AccountHeader,
    status: Option<String>,
    alert: Option<String>,
    clock: Option<String>,
    summary: Option<SummaryView>,
    positions: PositionsView,
    open_orders: Vec<OrderRow>,
    closed_orders: Vec<OrderRow>,
    chart: ChartView,
    form: OrderValues,
    errors: FieldErrors,
}

/// `GET /accounts/{id}` (no transaction: see `tenant::require_member_lazily`).
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    mut released: Released,
    shown: Credentials,
    session: Session,
    Path(id): Path<CredentialId>,
    Query(query): Query<PeriodQuery>,
) -> Result<AccountPage, AppError> {
    let credential = shown.own(id)?;
    let period = Period::parse(query.period.as_deref());
    let mut results = load_accounts(&state, &ctx, &mut released, &shown, period, true).await?;
    let status = session::take_once(&session, Once::Status);
    let mut alert = session::take_once(&session, Once::Alert);
    let account = AccountHeader::of(credential);
    let base = format!("/accounts/{}", account.id);
    let mut page = AccountPage {
        account,
        status,
        alert: None,
        clock: None,
        summary: None,
        positions: PositionsView::of([], Some(&base)),
        open_orders: Vec::new(),
        closed_orders: Vec::new(),
        chart: ChartView::of(&[], period),
        form: OrderValues::fresh(),
        errors: FieldErrors::default(),
        ctx,
    };
    match results.pop() {
        Some(Ok(snapshot)) => {
            page.summary = Some(SummaryView::of(&Totals::of([&snapshot.account])));
            page.clock = snapshot.clock.as_ref().map(clock_text);
            page.positions = PositionsView::of(
                snapshot
                    .positions
                    .iter()
                    .map(|p| (credential.label.as_str(), p)),
                Some(&base),
            );
            if let Some(orders) = &snapshot.orders {
                page.open_orders = order_rows(&orders.open);
                page.closed_orders = order_rows(&orders.closed);
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
