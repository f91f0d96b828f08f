//! In-memory account state of the simulator: generation from the key, the
//! account, positions and history bodies, and fills.

use std::{collections::HashMap, sync::Arc};

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration as TimeDuration, OffsetDateTime, Weekday, macros::datetime};
use uuid::Uuid;

use crate::alpaca::sim::activities::SimActivity;
use crate::alpaca::sim::data::{self, SplitMix, fnv1a};
use crate::alpaca::sim::orders::SimOrder;
use crate::domain::{Environment, Side};

/// Current prices by symbol, shared by every account of one simulator.
pub type Prices = Arc<HashMap<String, Decimal>>;

/// The starting prices.
pub fn initial_prices() -> Prices {
    Arc::new(
        data::SYMBOLS
            .iter()
            .chain(std::iter::once(&data::WHOLE_SHARES_ONLY))
            .map(|(symbol, _, cents, _)| ((*symbol).to_owned(), Decimal::new(*cents, 2)))
            .collect(),
    )
}

/// One holding of a simulated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// Ticker symbol.
    pub symbol: String,
    /// Quantity held (always positive; the simulator does not short).
    pub qty: Decimal,
    /// Average entry price.
    pub avg_entry_price: Decimal,
}

/// State of one simulated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    /// Environment the account lives in.
    pub env: Environment,
    /// Account id.
    pub id: Uuid,
    /// Account number (`PA…` paper, `LA…` live).
    pub account_number: String,
    /// Account creation time.
    pub created_at: OffsetDateTime,
    /// Cash balance.
    pub cash: Decimal,
    /// Equity at the previous close (fixed at creation).
    pub last_equity: Decimal,
    /// Holdings, by symbol.
    pub positions: Vec<Holding>,
    /// Orders (legs included), oldest first.
    pub orders: Vec<SimOrder>,
    /// Activities, oldest first.
    pub activities: Vec<SimActivity>,
    /// The simulator's current prices.
    pub prices: Prices,
    pub(super) seed: u64,
}

/// An RFC 3339 time as JSON.
pub fn ts(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map(Value::String).unwrap_or(Value::Null)
}

/// An optional time as JSON (`null` when absent).
pub fn opt_ts(t: Option<OffsetDateTime>) -> Value {
    t.map(ts).unwrap_or(Value::Null)
}

/// Rounds to cents, half away from zero.
pub fn round_cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

impl AccountState {
    /// Deterministically creates the account identified by `stem` (the key id
    /// without its last four characters) in `env`.
    pub fn generate(env: Environment, stem: &str, prices: Prices) -> Self {
        let seed = fnv1a(format!("{}:{stem}", env.as_str()).as_bytes());
        let mut rng = SplitMix::new(seed);
        let prefix = match env {
            Environment::Paper => "PA",
            Environment::Live => "LA",
        };
        let account_number = format!("{prefix}{:010}", rng.below(10_000_000_000));
        let id = rng.uuid();
        let days = rng.below(2000) as i64;
        let secs = rng.below(86_400) as i64;
        let created_at = datetime!(2018-01-02 00:00 UTC)
            + TimeDuration::days(days)
            + TimeDuration::seconds(secs);
        let cash = Decimal::new(500_000 + rng.below(9_500_000) as i64, 2);

        let mut symbols: Vec<&str> = data::SYMBOLS.iter().map(|r| r.0).collect();
        let count = 2 + rng.below(4) as usize;
        let mut positions = Vec::with_capacity(count + 1);
        for i in 0..count {
            let j = i + rng.below((symbols.len() - i) as u64) as usize;
            symbols.swap(i, j);
            let symbol = symbols[i];
            let whole = 1 + rng.below(150) as i64;
            let qty = if rng.below(4) == 0 {
                Decimal::new(whole * 10 + 5, 1)
            } else {
                Decimal::from(whole)
            };
            let price_cents = data::price(symbol)
                .map(|p| p.mantissa() as i64)
                .unwrap_or(10_000);
            let mut cents = price_cents * (80 + rng.below(41) as i64) / 100;
            cents -= cents % 2;
            positions.push(Holding {
                symbol: symbol.to_owned(),
                qty,
                avg_entry_price: Decimal::new(cents.max(2), 2),
            });
        }
        if stem.contains("NOPRICE") {
            positions.push(Holding {
                symbol: data::UNPRICED.to_owned(),
                qty: Decimal::from(100),
                avg_entry_price: Decimal::new(325, 2),
            });
        }
        positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        let last_equity = cash
            + positions
                .iter()
                .map(|h| h.qty * data::lastday_price(&h.symbol).unwrap_or_default())
                .sum::<Decimal>();
        let mut account = Self {
            env,
            id,
            account_number,
            created_at,
            cash,
            last_equity,
            positions,
            orders: Vec::new(),
            activities: Vec::new(),
            prices,
            seed,
        };
        account.activities = account.past_activities();
        account
    }

    /// The current price of `symbol`, if the simulator prices it.
    pub fn price(&self, symbol: &str) -> Option<Decimal> {
        self.prices.get(symbol).copied()
    }

    /// Σ market value of all priced positions.
    pub fn long_market_value(&self) -> Decimal {
        self.positions
            .iter()
            .filter_map(|h| Some(h.qty * self.price(&h.symbol)?))
            .sum()
    }

    /// Cash plus market value.
    pub fn equity(&self) -> Decimal {
        self.cash + self.long_market_value()
    }

    /// Reg-T buying power: twice the cash, never negative.
    pub fn buying_power(&self) -> Decimal {
        (self.cash * Decimal::TWO).max(Decimal::ZERO)
    }

    /// `GET /v2/account` body.
    pub fn account_json(&self) -> Value {
        let equity = self.equity();
        let lmv = self.long_market_value();
        json!({
            "id": self.id,
            "admin_configurations": {},
            "user_configurations": null,
            "account_number": self.account_number,
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "options_approved_level": 0,
            "options_trading_level": 0,
            "currency": "USD",
            "buying_power": data::money(self.buying_power()),
            "regt_buying_power": data::money(self.buying_power()),
            "daytrading_buying_power": "0.00",
            "effective_buying_power": data::money(self.buying_power()),
            "non_marginable_buying_power": data::money(self.cash.max(Decimal::ZERO)),
            "options_buying_power": data::money(self.cash.max(Decimal::ZERO)),
            "bod_dtbp": "0.00",
            "cash": data::money(self.cash),
            "accrued_fees": "0.00",
            "portfolio_value": data::money(equity),
            "pattern_day_trader": false,
            "trading_blocked": false,
            "transfers_blocked": false,
            "account_blocked": false,
            "created_at": ts(self.created_at),
            "trade_suspended_by_user": false,
            "multiplier": "2",
            "shorting_enabled": true,
            "equity": data::money(equity),
            "last_equity": data::money(self.last_equity),
            "long_market_value": data::money(lmv),
            "short_market_value": "0.00",
            "position_market_value": data::money(lmv),
            "initial_margin": data::money(lmv / Decimal::TWO),
            "maintenance_margin": data::money(round_cents(lmv * Decimal::new(3, 1))),
            "last_maintenance_margin": "0.00",
            "sma": "0.00",
            "daytrade_count": 0,
            "balance_asof": self.created_at.date().to_string(),
            "crypto_tier": 0
        })
    }

    /// One position's body; an asset the simulator cannot price gets `null`
    /// prices, as Alpaca documents for such assets.
    pub fn position_json(&self, h: &Holding) -> Value {
        let cost_basis = h.qty * h.avg_entry_price;
        let common = json!({
            "asset_id": data::asset_id(&h.symbol),
            "symbol": h.symbol,
            "exchange": data::exchange(&h.symbol),
            "asset_class": "us_equity",
            "asset_marginable": true,
            "qty": data::quantity(h.qty),
            "qty_available": data::quantity(h.qty - self.qty_reserved(&h.symbol)),
            "avg_entry_price": data::money(h.avg_entry_price),
            "side": "long",
            "cost_basis": data::money(cost_basis),
        });
        let Value::Object(mut body) = common else {
            return Value::Null;
        };
        let prices = match (self.price(&h.symbol), data::lastday_price(&h.symbol)) {
            (Some(price), Some(lastday)) => {
                let market_value = h.qty * price;
                let pl = market_value - cost_basis;
                let plpc = pl.checked_div(cost_basis).unwrap_or_default();
                let intraday = h.qty * (price - lastday);
                let intraday_pc = (price - lastday).checked_div(lastday).unwrap_or_default();
                json!({
                    "market_value": data::money(market_value),
                    "unrealized_pl": data::money(pl),
                    "unrealized_plpc": data::ratio(plpc),
                    "unrealized_intraday_pl": data::money(intraday),
                    "unrealized_intraday_plpc": data::ratio(intraday_pc),
                    "current_price": data::money(price),
                    "lastday_price": data::money(lastday),
                    "change_today": data::ratio(intraday_pc)
                })
            }
            _ => json!({
                "market_value": null, "unrealized_pl": null, "unrealized_plpc": null,
                "unrealized_intraday_pl": null, "unrealized_intraday_plpc": null,
                "current_price": null, "lastday_price": null, "change_today": null
            }),
        };
        if let Value::Object(prices) = prices {
            body.extend(prices);
        }
        Value::Object(body)
    }

    /// `GET /v2/positions` body.
    pub fn positions_json(&self) -> Value {
        Value::Array(
            self.positions
                .iter()
                .map(|h| self.position_json(h))
                .collect(),
        )
    }

    /// Quantity of `symbol` held back by working sell orders (held legs of a
    /// bracket whose entry has not filled reserve nothing yet).
    pub fn qty_reserved(&self, symbol: &str) -> Decimal {
        self.orders
            .iter()
            .filter(|o| o.status == "new" && o.side == Side::Sell && o.symbol == symbol)
            .map(|o| o.qty.unwrap_or_default())
            .sum()
    }

    /// Quantity of `symbol` held.
    pub fn qty_held(&self, symbol: &str) -> Decimal {
        self.positions
            .iter()
            .find(|h| h.symbol == symbol)
            .map(|h| h.qty)
            .unwrap_or_default()
    }

    /// Applies a fill to cash and positions.
    pub fn apply_fill(&mut self, symbol: &str, side: Side, qty: Decimal, price: Decimal) {
        let notional = round_cents(qty * price);
        match side {
            Side::Buy => {
                self.cash -= notional;
                if let Some(h) = self.positions.iter_mut().find(|h| h.symbol == symbol) {
                    let total = h.qty + qty;
                    let cost = h.qty * h.avg_entry_price + qty * price;
                    h.avg_entry_price = cost
                        .checked_div(total)
                        .unwrap_or(price)
                        .round_dp(4)
                        .normalize();
                    h.qty = total;
                } else {
                    self.positions.push(Holding {
                        symbol: symbol.to_owned(),
                        qty,
                        avg_entry_price: price,
                    });
                    self.positions.sort_by(|a, b| a.symbol.cmp(&b.symbol));
                }
            }
            Side::Sell => {
                self.cash += notional;
                if let Some(h) = self.positions.iter_mut().find(|h| h.symbol == symbol) {
                    h.qty -= qty;
                }
                self.positions.retain(|h| h.qty > Decimal::ZERO);
            }
        }
    }

    /// `GET /v2/account/portfolio/history` body: `points` business days
    /// ending today at the current equity. Series longer than 63 points start
    /// with three `null`s (days before the account had data).
    pub fn history_json(&self, points: usize, now: OffsetDateTime) -> Value {
        let points = points.max(1);
        let mut rng = SplitMix::new(self.seed ^ fnv1a(b"history"));
        let mut equity = vec![Decimal::ZERO; points];
        equity[points - 1] = self.equity();
        for i in (0..points - 1).rev() {
            let bp = rng.below(401) as i64 - 200;
            let factor = Decimal::ONE + Decimal::new(bp, 4);
            equity[i] = round_cents(equity[i + 1].checked_div(factor).unwrap_or(equity[i + 1]));
        }
        let nulls = if points > 63 { 3 } else { 0 };

        let mut dates: Vec<Date> = Vec::with_capacity(points);
        let mut day = now.date();
        while dates.len() < points {
            if !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
                dates.push(day);
            }
            match day.previous_day() {
                Some(d) => day = d,
                None => break,
            }
        }
        dates.reverse();
        let timestamps: Vec<i64> = dates
            .iter()
            .map(|d| d.midnight().assume_utc().unix_timestamp() + 4 * 3600)
            .collect();

        let base = equity[nulls.min(points - 1)];
        let mut eq = Vec::with_capacity(points);
        let mut pl = Vec::with_capacity(points);
        let mut pct = Vec::with_capacity(points);
        for (i, e) in equity.iter().enumerate() {
            if i < nulls {
                eq.push(Value::Null);
                pl.push(Value::Null);
                pct.push(Value::Null);
                continue;
            }
            let p = *e - base;
            eq.push(data::number(*e));
            pl.push(data::number(p));
            if i == nulls {
                pct.push(Value::Null);
            } else {
                pct.push(data::number(
                    p.checked_div(base).unwrap_or_default().round_dp(6),
                ));
            }
        }
        json!({
            "timestamp": timestamps,
            "equity": eq,
            "profit_loss": pl,
            "profit_loss_pct": pct,
            "base_value": data::number(base),
            "base_value_asof": dates.get(nulls).map(|d| d.to_string()),
            "timeframe": "1D"
        })
    }
}
