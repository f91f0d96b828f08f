//! View models shared by the portfolio and account pages.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::{
    alpaca::endpoints::path_segment,
    alpaca::{Clock, Position},
    chart::{self, Chart},
    eastern,
    money::{money, percent, sign_class, signed_money},
    portfolio::{Period, Sum, Totals},
};

/// Shown where Alpaca sent no readable value.
pub const DASH: &str = "—";

/// `$1,234.56`, or `—` when unknown.
pub fn money_or_dash(value: Option<Decimal>) -> String {
    value.map_or_else(|| DASH.to_owned(), money)
}

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
    /// What the totals leave out, in words (empty when nothing).
    pub note: String,
}

impl SummaryView {
    pub fn of(totals: &Totals) -> Self {
        let pct = totals
            .day_change_pct()
            .map(|p| format!("({})", percent(p)))
            .unwrap_or_default();
        let day = totals.day_change.shown();
        let left_out: Vec<String> = [
            ("equity", &totals.equity),
            ("cash", &totals.cash),
            ("buying power", &totals.buying_power),
            ("day change", &totals.day_change),
        ]
        .into_iter()
        .filter(|(_, sum)| sum.unknown > 0)
        .map(|(name, sum): (&str, &Sum)| {
            let accounts = if sum.unknown == 1 {
                "account"
            } else {
                "accounts"
            };
            format!("the {name} of {} {accounts}", sum.unknown)
        })
        .collect();
        let note = if left_out.is_empty() {
            String::new()
        } else {
            format!(
                "Alpaca sent some values in a form Paddock could not read; they show as — and the totals leave out {}.",
                left_out.join(", ")
            )
        };
        Self {
            equity: money_or_dash(totals.equity.shown()),
            cash: money_or_dash(totals.cash.shown()),
            buying_power: money_or_dash(totals.buying_power.shown()),
            day_change: day.map_or_else(|| DASH.to_owned(), signed_money),
            day_change_pct: pct,
            day_class: day.map_or("", sign_class),
            note,
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
    /// The close confirmation page, on account pages.
    pub close_url: Option<String>,
}

impl PositionRow {
    pub fn of(account: &str, p: &Position) -> Self {
        Self {
            account: account.to_owned(),
            symbol: p.symbol.clone(),
            quantity: p.qty.map_or_else(|| DASH.to_owned(), |q| q.to_string()),
            avg_entry: money_or_dash(p.avg_entry_price),
            current_price: money_or_dash(p.current_price),
            market_value: money_or_dash(p.market_value),
            unrealized: p
                .unrealized_pl
                .map_or_else(|| DASH.to_owned(), signed_money),
            unrealized_class: p.unrealized_pl.map_or("", sign_class),
            close_url: None,
        }
    }
}

/// The Positions table: rows, whether they get a Close button, and a note
/// naming positions Alpaca sent no price for.
pub struct PositionsView {
    pub rows: Vec<PositionRow>,
    pub actions: bool,
    pub note: String,
}

impl PositionsView {
    /// Rows of `(account label, position)`; with `close_base` (an account's
    /// URL), each row links to its close confirmation page.
    pub fn of<'a>(
        positions: impl IntoIterator<Item = (&'a str, &'a Position)>,
        close_base: Option<&str>,
    ) -> Self {
        let mut unpriced = Vec::new();
        let rows = positions
            .into_iter()
            .map(|(account, p)| {
                if !p.is_priced() {
                    unpriced.push(p.symbol.clone());
                }
                let mut row = PositionRow::of(account, p);
                row.close_url = close_base
                    .map(|base| format!("{base}/positions/{}/close", path_segment(&p.symbol)));
                row
            })
            .collect();
        let note = match unpriced.len() {
            0 => String::new(),
            _ => format!(
                "Alpaca sent no current price for {}, so its market value and profit show as —.",
                unpriced.join(", ")
            ),
        };
        Self {
            rows,
            actions: close_base.is_some(),
            note,
        }
    }
}

/// "Market open", or "Market closed · opens Tue Dec 1, 9:30 AM ET".
pub fn clock_text(clock: &Clock) -> String {
    if clock.is_open {
        "Market open".to_owned()
    } else {
        match clock.next_open {
            Some(at) => format!("Market closed · opens {}", eastern::describe(at)),
            None => "Market closed".to_owned(),
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

/// A short description of a device from its user agent: "Firefox on Linux".
pub fn device(user_agent: Option<&str>) -> String {
    let ua = user_agent.unwrap_or("");
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Chrome (headless)"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("reqwest", "a script"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map_or("An unknown browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alpaca::Account;

    #[test]
    fn devices_are_described_briefly() {
        assert_eq!(
            device(Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
            )),
            "Firefox on Linux"
        );
        assert_eq!(
            device(Some(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
            )),
            "Safari on macOS"
        );
        assert_eq!(
            device(Some(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0"
            )),
            "Edge on Windows"
        );
        assert_eq!(device(None), "An unknown browser");
    }

    #[test]
    fn an_unreadable_value_is_a_dash_and_the_totals_say_what_they_leave_out() {
        let good: Account = serde_json::from_str(
            r#"{"equity":"100","last_equity":"90","cash":"10","buying_power":"20"}"#,
        )
        .expect("account");
        let bad: Account = serde_json::from_str(r#"{"equity":"??","cash":"5","buying_power":"7"}"#)
            .expect("account");
        let view = SummaryView::of(&Totals::of([&good, &bad]));
        assert_eq!(view.equity, "$100.00");
        assert_eq!(view.cash, "$15.00");
        assert!(
            view.note.contains("the equity of 1 account"),
            "{}",
            view.note
        );
        let alone = SummaryView::of(&Totals::of([&bad]));
        assert_eq!(alone.equity, "—");
        assert_eq!(alone.day_change, "—");
    }

    #[test]
    fn a_position_without_prices_shows_dashes_and_a_note() {
        let p: Position = serde_json::from_str(
            r#"{"symbol":"LEHMQ","qty":"100","avg_entry_price":"3.25","market_value":null,"current_price":null,"unrealized_pl":null}"#,
        )
        .expect("position");
        let view = PositionsView::of([("Main", &p)], Some("/accounts/x"));
        assert_eq!(view.rows[0].quantity, "100");
        assert_eq!(view.rows[0].market_value, "—");
        assert_eq!(
            view.rows[0].close_url.as_deref(),
            Some("/accounts/x/positions/LEHMQ/close")
        );
        assert!(view.note.contains("LEHMQ"));
    }

    #[test]
    fn the_clock_reads_like_a_trader_would_say_it() {
        let open: Clock = serde_json::from_str(r#"{"is_open":true}"#).expect("clock");
        assert_eq!(clock_text(&open), "Market open");
        let closed: Clock =
            serde_json::from_str(r#"{"is_open":false,"next_open":"2026-12-01T09:30:00-05:00"}"#)
                .expect("clock");
        assert_eq!(
            clock_text(&closed),
            "Market closed · opens Tue Dec 1, 9:30 AM ET"
        );
    }
}
