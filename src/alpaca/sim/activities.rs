//! Account activities of a simulated account: a deposit, monthly interest on
//! cash, the fills that built its positions, quarterly dividends on them,
//! then every fill (and the TAF fee of every sale) as it happens. Ids are Alpaca's `<time>::<uuid>`, so
//! ordering by id is ordering by time, and an id is the next page's token.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use time::{Date, Duration as TimeDuration, Month, OffsetDateTime, macros::datetime};
use uuid::Uuid;

use crate::alpaca::sim::data::{self, SplitMix, fnv1a};
use crate::alpaca::sim::state::{AccountState, round_cents, ts};
use crate::domain::Side;

/// Dividends are generated up to this date, so the history is the same on every run.
const DIVIDENDS_UNTIL: OffsetDateTime = datetime!(2026-08-31 00:00 UTC);

/// Monthly interest on cash (about 3.6 % a year).
const INTEREST_PER_MONTH: Decimal = Decimal::from_parts(3, 0, 0, false, 3);

/// FINRA's trading activity fee per share sold.
const TAF_PER_SHARE: Decimal = Decimal::from_parts(166, 0, 0, false, 6);

/// One activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimActivity {
    /// `<yyyymmddhhmmssSSS>::<uuid>`.
    pub id: String,
    /// What happened.
    pub kind: Kind,
}

/// A fill, or money moving for another reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An order (partly) filled.
    Fill {
        at: OffsetDateTime,
        symbol: String,
        side: Side,
        qty: Decimal,
        price: Decimal,
        order_id: Uuid,
    },
    /// A deposit, dividend or fee.
    Cash {
        activity_type: &'static str,
        date: Date,
        net_amount: Decimal,
        description: String,
        dividend: Option<(String, Decimal, Decimal)>,
    },
}

fn activity_id(at: OffsetDateTime, uuid: Uuid) -> String {
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}{:03}::{uuid}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

impl SimActivity {
    /// Alpaca's JSON for it.
    pub fn json(&self) -> Value {
        match &self.kind {
            Kind::Fill {
                at,
                symbol,
                side,
                qty,
                price,
                order_id,
            } => json!({
                "id": self.id,
                "activity_type": "FILL",
                "transaction_time": ts(*at),
                "type": "fill",
                "price": data::money(*price),
                "qty": data::quantity(*qty),
                "side": side.as_str(),
                "symbol": symbol,
                "leaves_qty": "0",
                "order_id": order_id,
                "cum_qty": data::quantity(*qty),
                "order_status": "filled"
            }),
            Kind::Cash {
                activity_type,
                date,
                net_amount,
                description,
                dividend,
            } => {
                let mut body = json!({
                    "id": self.id,
                    "activity_type": activity_type,
                    "date": date.to_string(),
                    "net_amount": data::money(*net_amount),
                    "description": description,
                    "status": "executed"
                });
                if let (Some((symbol, qty, per_share)), Value::Object(map)) = (dividend, &mut body)
                {
                    map.insert("symbol".into(), json!(symbol));
                    map.insert("qty".into(), json!(data::quantity(*qty)));
                    map.insert(
                        "per_share_amount".into(),
                        json!(per_share.normalize().to_string()),
                    );
                }
                body
            }
        }
    }
}

impl AccountState {
    /// The activities that explain the generated account.
    pub(super) fn past_activities(&self) -> Vec<SimActivity> {
        let mut rng = SplitMix::new(self.seed ^ fnv1a(b"activities"));
        let mut list = Vec::new();
        let cost: Decimal = self
            .positions
            .iter()
            .map(|h| round_cents(h.qty * h.avg_entry_price))
            .sum();
        list.push(SimActivity {
            id: activity_id(self.created_at, rng.uuid()),
            kind: Kind::Cash {
                activity_type: "CSD",
                date: self.created_at.date(),
                net_amount: self.cash + cost,
                description: "Initial deposit".into(),
                dividend: None,
            },
        });
        let first_of_next = |d: Date| {
            d.replace_day(1)
                .ok()
                .and_then(|d| d.checked_add(TimeDuration::days(32)))
                .and_then(|d| d.replace_day(1).ok())
                .filter(|d| d.midnight().assume_utc() <= DIVIDENDS_UNTIL)
        };
        let mut month = self.created_at.date();
        while let Some(next) = first_of_next(month) {
            month = next;
            list.push(SimActivity {
                id: activity_id(next.midnight().assume_utc(), rng.uuid()),
                kind: Kind::Cash {
                    activity_type: "INT",
                    date: next,
                    net_amount: round_cents(self.cash * INTEREST_PER_MONTH).max(Decimal::new(1, 2)),
                    description: "Interest on cash".into(),
                    dividend: None,
                },
            });
        }
        for (i, h) in self.positions.iter().enumerate() {
            let at = self.created_at + TimeDuration::days(1 + i as i64) + TimeDuration::minutes(37);
            list.push(SimActivity {
                id: activity_id(at, rng.uuid()),
                kind: Kind::Fill {
                    at,
                    symbol: h.symbol.clone(),
                    side: Side::Buy,
                    qty: h.qty,
                    price: h.avg_entry_price,
                    order_id: rng.uuid(),
                },
            });
            let Some(per_share) = data::dividend(&h.symbol) else {
                continue;
            };
            let mut year = at.year();
            let mut quarter = 0;
            loop {
                let month = [Month::February, Month::May, Month::August, Month::November][quarter];
                let Ok(date) = Date::from_calendar_date(year, month, 15) else {
                    break;
                };
                let paid = date.midnight().assume_utc();
                if paid > DIVIDENDS_UNTIL {
                    break;
                }
                if paid > at {
                    list.push(SimActivity {
                        id: activity_id(paid, rng.uuid()),
                        kind: Kind::Cash {
                            activity_type: "DIV",
                            date,
                            net_amount: round_cents(h.qty * per_share),
                            description: format!("Cash dividend on {}", h.symbol),
                            dividend: Some((h.symbol.clone(), h.qty, per_share)),
                        },
                    });
                }
                quarter = (quarter + 1) % 4;
                if quarter == 0 {
                    year += 1;
                }
            }
        }
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Records a fill (and, for a sale, its fee, taken from cash).
    pub(super) fn record_fill(
        &mut self,
        symbol: &str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        order_id: Uuid,
        at: OffsetDateTime,
    ) {
        self.activities.push(SimActivity {
            id: activity_id(at, Uuid::new_v4()),
            kind: Kind::Fill {
                at,
                symbol: symbol.to_owned(),
                side,
                qty,
                price,
                order_id,
            },
        });
        if side == Side::Sell {
            let fee = round_cents(qty * TAF_PER_SHARE).max(Decimal::new(1, 2));
            self.cash -= fee;
            // A millisecond later: the fee follows the sale it is for.
            let charged = at + TimeDuration::milliseconds(1);
            self.activities.push(SimActivity {
                id: activity_id(charged, Uuid::new_v4()),
                kind: Kind::Cash {
                    activity_type: "FEE",
                    date: at.date(),
                    net_amount: -fee,
                    description: format!("TAF fee on the sale of {} {symbol}", data::quantity(qty)),
                    dividend: None,
                },
            });
        }
    }

    /// One page, newest first: up to `size` activities older than `token`.
    pub fn activities_page(&self, size: usize, token: Option<&str>) -> Value {
        let mut newest_first: Vec<&SimActivity> = self.activities.iter().collect();
        newest_first.sort_by(|a, b| b.id.cmp(&a.id));
        Value::Array(
            newest_first
                .into_iter()
                .filter(|a| token.is_none_or(|t| a.id.as_str() < t))
                .take(size)
                .map(SimActivity::json)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alpaca::sim::state::initial_prices;
    use crate::domain::Environment;

    #[test]
    fn a_generated_account_has_a_deposit_fills_and_dividends_in_order() {
        let account =
            AccountState::generate(Environment::Paper, "PKACTIVITIES0000", initial_prices());
        let kinds: Vec<&str> = account
            .activities
            .iter()
            .map(|a| match &a.kind {
                Kind::Fill { .. } => "FILL",
                Kind::Cash { activity_type, .. } => activity_type,
            })
            .collect();
        assert_eq!(kinds[0], "CSD");
        assert_eq!(
            kinds.iter().filter(|k| **k == "FILL").count(),
            account.positions.len()
        );
        assert!(account.activities.windows(2).all(|w| w[0].id < w[1].id));
        let again =
            AccountState::generate(Environment::Paper, "PKACTIVITIES0000", initial_prices());
        assert_eq!(
            again.activities, account.activities,
            "deterministic per key"
        );
    }

    #[test]
    fn pages_are_newest_first_and_continue_after_their_token() {
        let account =
            AccountState::generate(Environment::Paper, "PKACTIVITIES0000", initial_prices());
        let all = account.activities_page(usize::MAX, None);
        let all = all.as_array().expect("list");
        let first = account.activities_page(2, None);
        let first = first.as_array().expect("list");
        assert_eq!(first.as_slice(), &all[..2]);
        let token = first[1]["id"].as_str().expect("id");
        let second = account.activities_page(2, Some(token));
        assert_eq!(second.as_array().expect("list").as_slice(), &all[2..4]);
    }
}
