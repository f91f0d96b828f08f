//! View models shared by the portfolio and account pages.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::{
    alpaca::Position,
    chart::{self, Chart},
    money::{money, percent, sign_class, signed_money},
    portfolio::{Period, Totals},
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
}
