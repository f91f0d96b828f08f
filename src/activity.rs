//! Account activity (fills, dividends, fees, transfers): paged reads from
//! `GET /v2/account/activities` and the CSV rows of the export. Knows
//! Alpaca, not HTTP or SQL.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;

use crate::alpaca::{Activity, AlpacaError, ApiKeys, Client, Environment};

/// Activities per page on `/accounts/{id}/history`.
pub const PAGE_SIZE: usize = 50;

/// One page of activity, newest first.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Activity>,
    /// The token of the next (older) page, when there is one.
    pub older: Option<String>,
}

/// Reads the page after `token` (the first page without one) under `deadline`.
/// One more activity than shown is asked for, to know whether an older page exists.
pub async fn page(
    client: &Client,
    environment: Environment,
    keys: &ApiKeys,
    token: Option<&str>,
    deadline: Duration,
) -> Result<Page, AlpacaError> {
    let read = client.activities(environment, keys, PAGE_SIZE as u32 + 1, token);
    let mut items = tokio::time::timeout(deadline, read)
        .await
        .unwrap_or_else(|_| Err(AlpacaError::Unavailable("the page deadline passed".into())))?;
    let older = (items.len() > PAGE_SIZE).then(|| {
        items.truncate(PAGE_SIZE);
        items.last().map(|a| a.id.clone()).unwrap_or_default()
    });
    Ok(Page { items, older })
}

/// What a person calls an activity: "Buy (fill)", "Dividend", "Fee", or the
/// type as Alpaca sent it when Paddock does not know it.
pub fn kind(a: &Activity) -> String {
    if a.is_fill() {
        let side = match a.side.to_ascii_lowercase().as_str() {
            "buy" => "Buy",
            "sell" => "Sell",
            _ => "Trade",
        };
        let fill = if a.fill_type == "partial_fill" {
            "partial fill"
        } else {
            "fill"
        };
        return format!("{side} ({fill})");
    }
    let code = a.activity_type.to_ascii_uppercase();
    let known = match code.as_str() {
        "DIV" | "DIVCGL" | "DIVCGS" | "DIVNRA" | "DIVROC" | "DIVTXEX" | "DIVTW" | "DIVFT" => {
            "Dividend"
        }
        "DIVFEE" | "DIVWH" | "WH" => "Dividend withholding",
        "FEE" | "CFEE" | "PTC" => "Fee",
        "PTR" => "Fee rebate",
        "CSD" => "Deposit",
        "CSW" => "Withdrawal",
        "TRANS" => "Transfer",
        "JNL" | "JNLC" => "Journal (cash)",
        "JNLS" => "Journal (shares)",
        "INT" | "INTNRA" | "INTTW" | "INTPNL" => "Interest",
        "SSP" | "SPLIT" => "Stock split",
        "SSO" | "SPIN" => "Spin-off",
        "MA" => "Merger or acquisition",
        "NC" => "Name change",
        "SC" => "Symbol change",
        "REORG" => "Reorganization",
        "ACATC" | "ACATS" => "Account transfer",
        "OPASN" => "Option assignment",
        "OPEXP" => "Option expiration",
        "OPXRC" | "OPEXC" => "Option exercise",
        _ => "",
    };
    if known.is_empty() {
        a.activity_type.clone()
    } else {
        known.to_owned()
    }
}

/// The CSV header line.
pub const CSV_HEADER: &str =
    "Date,Type,Symbol,Side,Quantity,Price,Amount,Description,Activity ID\r\n";

/// One CSV line (CRLF-terminated). Decimals are written exactly as Alpaca
/// sent them (the amount of a fill is its exact `qty × price`); text that a
/// spreadsheet would run as a formula is prefixed with `'`.
pub fn csv_row(a: &Activity) -> String {
    let date = match (a.transaction_time, a.date) {
        (Some(t), _) => t.format(&Rfc3339).unwrap_or_default(),
        (None, Some(d)) => d.date().to_string(),
        (None, None) => String::new(),
    };
    let fields = [
        date,
        text(&kind(a)),
        text(&a.symbol),
        text(&a.side),
        a.qty.map(|q| q.to_string()).unwrap_or_default(),
        a.price().map(|p| p.to_string()).unwrap_or_default(),
        a.amount().map(|m| m.to_string()).unwrap_or_default(),
        text(&a.description),
        text(&a.id),
    ];
    let mut line = fields.map(|f| quote(&f)).join(",");
    line.push_str("\r\n");
    line
}

fn text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(json: &str) -> Activity {
        serde_json::from_str(json).expect("activity")
    }

    #[test]
    fn a_fill_row_has_exact_decimals_and_a_signed_amount() {
        let fill = activity(
            r#"{"id":"20220304095318500::092cd749","activity_type":"FILL","transaction_time":"2022-03-04T14:53:18.500245Z",
                "type":"partial_fill","price":"2630.95","qty":"0.177047834","side":"buy","symbol":"GOOGL"}"#,
        );
        assert_eq!(kind(&fill), "Buy (partial fill)");
        assert_eq!(
            csv_row(&fill),
            "2022-03-04T14:53:18.500245Z,Buy (partial fill),GOOGL,buy,0.177047834,2630.95,-465.80399886230,,20220304095318500::092cd749\r\n"
        );
    }

    #[test]
    fn text_is_quoted_and_cannot_become_a_formula() {
        let div = activity(
            r#"{"id":"1::a","activity_type":"DIV","date":"2019-08-01","net_amount":"1.02","symbol":"T","qty":"2",
                "per_share_amount":"0.51","description":"=HYPERLINK(\"x\"), \"quoted\""}"#,
        );
        assert_eq!(
            csv_row(&div),
            "2019-08-01,Dividend,T,,2,0.51,1.02,\"'=HYPERLINK(\"\"x\"\"), \"\"quoted\"\"\",1::a\r\n"
        );
        let odd = activity(
            r#"{"id":"2::b","activity_type":"NEWKIND","date":"2024-01-02","net_amount":-3}"#,
        );
        assert_eq!(kind(&odd), "NEWKIND");
        assert!(csv_row(&odd).starts_with("2024-01-02,NEWKIND,,,,,-3,,"));
    }
}
