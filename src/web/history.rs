//! `/accounts/{id}/history`: the account's activity (fills, dividends, fees,
//! transfers), 50 a page with Alpaca's `page_token` behind **Older**; and
//! `history.csv`, every activity streamed page by page as Alpaca sends them.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use http_body::Frame;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::{
    activity::{self, CSV_HEADER, csv_row},
    alpaca::{Activity, AlpacaError, endpoints::MAX_ACTIVITY_PAGE},
    domain::CredentialId,
    error::AppError,
    money::{money_exact, sign_class, signed_money},
    state::AppState,
    vault::Purpose,
    web::{
        extract::Path,
        forms::when,
        service::{
            UNSEAL_FAILED, describe, failure_status, own_credential, unseal_and_release, within,
        },
        tenant::{Ctx, Tx},
        trading_views::AccountHeader,
    },
};

/// One row of the **Account activity** table.
pub struct ActivityRow {
    date: String,
    kind: String,
    symbol: String,
    quantity: String,
    price: String,
    amount: String,
    amount_class: &'static str,
}

impl ActivityRow {
    fn of(a: &Activity) -> Self {
        let date = match (a.transaction_time, a.date) {
            (Some(t), _) => when(t),
            (None, Some(d)) => d.date().to_string(),
            (None, None) => String::new(),
        };
        Self {
            date,
            kind: activity::kind(a),
            symbol: a.symbol.clone(),
            quantity: a.qty.map(|q| q.to_string()).unwrap_or_default(),
            price: a.price().map(money_exact).unwrap_or_default(),
            amount: a.amount().map(signed_money).unwrap_or_else(|| "—".into()),
            amount_class: a.amount().map_or("", sign_class),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts/history.html")]
pub struct HistoryPage {
    ctx: Ctx,
    account: AccountHeader,
    alert: Option<String>,
    rows: Vec<ActivityRow>,
    first_page: bool,
    older: Option<String>,
}

/// The `?page_token=` query.
#[derive(Deserialize)]
pub struct PageQuery {
    page_token: Option<String>,
}

/// Alpaca's activity ids look like `20220202135509981::2d7be4ff-…`.
fn plausible_token(token: &str) -> bool {
    (1..=100).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-')
}

/// `GET /accounts/{id}/history`.
pub async fn index(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    Path(id): Path<CredentialId>,
    Query(query): Query<PageQuery>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let token = query.page_token.filter(|t| !t.is_empty());
    if token.as_deref().is_some_and(|t| !plausible_token(t)) {
        return Err(AppError::BadRequest);
    }
    let account = AccountHeader::of(&credential);
    let mut page = HistoryPage {
        ctx: ctx.clone(),
        account,
        alert: None,
        rows: Vec::new(),
        first_page: token.is_none(),
        older: None,
    };
    let (unsealed, released) = unseal_and_release(
        &state,
        &ctx,
        tx,
        std::slice::from_ref(&credential),
        Purpose::History,
    )
    .await?;
    let Some(keys) = unsealed.into_iter().flatten().next() else {
        page.alert = Some(UNSEAL_FAILED.into());
        return Ok(page.into_response());
    };
    let read = activity::page(
        released.alpaca(),
        credential.environment,
        &keys,
        token.as_deref(),
        state.settings.alpaca_deadline,
    )
    .await;
    drop(keys);
    match read {
        Ok(activities) => {
            page.rows = activities.items.iter().map(ActivityRow::of).collect();
            page.older = activities.older.map(|token| {
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("page_token", &token)
                    .finish();
                format!("/accounts/{}/history?{query}", credential.id)
            });
        }
        Err(e) => page.alert = Some(describe(&e)),
    }
    Ok(page.into_response())
}

/// `GET /accounts/{id}/history.csv`: every activity, newest first. The first
/// page is read before answering, so a refusal gets a page; later pages are
/// streamed as they come, and a failure midway breaks the download rather
/// than ending it early as if complete.
pub async fn csv(
    State(state): State<AppState>,
    ctx: Ctx,
    mut tx: Tx,
    Path(id): Path<CredentialId>,
) -> Result<Response, AppError> {
    let credential = own_credential(&mut tx, id).await?;
    let account = AccountHeader::of(&credential);
    let (unsealed, released) = unseal_and_release(
        &state,
        &ctx,
        tx,
        std::slice::from_ref(&credential),
        Purpose::HistoryExport,
    )
    .await?;
    let failure = |alert: String, status: StatusCode| {
        let page = HistoryPage {
            ctx: ctx.clone(),
            account: account.clone(),
            alert: Some(alert),
            rows: Vec::new(),
            first_page: true,
            older: None,
        };
        (status, page).into_response()
    };
    let Some(keys) = unsealed.into_iter().flatten().next() else {
        return Ok(failure(UNSEAL_FAILED.into(), StatusCode::CONFLICT));
    };
    let client = released.alpaca().clone();
    let env = credential.environment;
    let first = within(
        &state,
        client.activities(env, &keys, MAX_ACTIVITY_PAGE, None),
    )
    .await;
    let first = match first {
        Ok(first) => first,
        Err(e) => return Ok(failure(describe(&e), failure_status(&e))),
    };
    let (sender, receiver) = mpsc::channel::<Result<Bytes, AlpacaError>>(4);
    let deadline = state.settings.alpaca_deadline;
    tokio::spawn(async move {
        let mut text = String::from(CSV_HEADER);
        let mut page = first;
        loop {
            for a in &page {
                text.push_str(&csv_row(a));
            }
            if sender
                .send(Ok(Bytes::from(std::mem::take(&mut text))))
                .await
                .is_err()
            {
                return;
            }
            let Some(last) = page.last().map(|a| a.id.clone()) else {
                return;
            };
            if page.len() < MAX_ACTIVITY_PAGE as usize || last.is_empty() {
                return;
            }
            let next = client.activities(env, &keys, MAX_ACTIVITY_PAGE, Some(&last));
            page = match tokio::time::timeout(deadline, next).await {
                Ok(Ok(next)) => next,
                Ok(Err(e)) => {
                    tracing::warn!(error = e.kind(), "activity export stopped");
                    let _ = sender.send(Err(e)).await;
                    return;
                }
                Err(_) => {
                    let _ = sender
                        .send(Err(AlpacaError::Unavailable("deadline".into())))
                        .await;
                    return;
                }
            };
        }
    });
    let filename: String = credential
        .account_number
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let disposition = format!("attachment; filename=\"paddock-{filename}-activity.csv\"");
    let mut response = Body::new(ChannelBody(receiver)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A response body fed by a channel; an error item aborts the response.
struct ChannelBody(mpsc::Receiver<Result<Bytes, AlpacaError>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = AlpacaError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, AlpacaError>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|chunk| chunk.map(Frame::data)))
    }
}
