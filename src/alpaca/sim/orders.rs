//! Orders of a simulated account and the matching engine: market orders fill
//! at the simulated price; limit, stop and stop-limit orders rest until the
//! price reaches them; trailing stops follow the best price; bracket and OTO
//! orders hold their legs until the entry fills, then the first leg to fill
//! cancels the other; IOC and FOK orders that cannot fill at once are
//! cancelled. Notional orders fill `notional / price` shares (9 decimals).

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::alpaca::sim::data;
use crate::alpaca::sim::state::AccountState;
use crate::alpaca::sim::validate::{NewOrder, Refusal, unprocessable};
use crate::domain::{OrderType, Side, TimeInForce};

/// One order (or leg) of a simulated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    /// Order id.
    pub id: Uuid,
    /// Client order id (unique per account).
    pub client_order_id: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Symbol.
    pub symbol: String,
    /// Quantity (`None` for a notional order).
    pub qty: Option<Decimal>,
    /// Dollar amount of a notional order.
    pub notional: Option<Decimal>,
    /// Side.
    pub side: Side,
    /// Type.
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Limit price.
    pub limit_price: Option<Decimal>,
    /// Stop price (a trailing stop's current stop).
    pub stop_price: Option<Decimal>,
    /// Trail in percent.
    pub trail_percent: Option<Decimal>,
    /// Trail in dollars.
    pub trail_price: Option<Decimal>,
    /// Best price since a trailing stop was placed.
    pub hwm: Option<Decimal>,
    /// Extended hours eligibility.
    pub extended_hours: bool,
    /// `simple`, `bracket` or `oto`.
    pub order_class: &'static str,
    /// The entry order of a leg.
    pub parent: Option<Uuid>,
    /// Whether a stop-limit's stop has traded (it now works as a limit).
    pub triggered: bool,
    /// `new`, `held`, `filled` or `canceled`.
    pub status: String,
    /// Shares filled.
    pub filled_qty: Decimal,
    /// Fill price.
    pub filled_avg_price: Option<Decimal>,
    /// Fill time.
    pub filled_at: Option<OffsetDateTime>,
    /// Cancel time.
    pub canceled_at: Option<OffsetDateTime>,
}

impl SimOrder {
    /// Whether the order can still fill or be cancelled.
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "new" | "held")
    }

    fn new(order: &NewOrder, now: OffsetDateTime, client_order_id: String) -> Self {
        Self {
            id: Uuid::new_v4(),
            client_order_id,
            created_at: now,
            symbol: order.symbol.clone(),
            qty: order.qty,
            notional: order.notional,
            side: order.side,
            order_type: order.order_type,
            time_in_force: order.time_in_force,
            limit_price: order.limit_price,
            stop_price: order.stop_price,
            trail_percent: order.trail_percent,
            trail_price: order.trail_price,
            hwm: None,
            extended_hours: order.extended_hours,
            order_class: order.order_class,
            parent: None,
            triggered: false,
            status: "new".to_owned(),
            filled_qty: Decimal::ZERO,
            filled_avg_price: None,
            filled_at: None,
            canceled_at: None,
        }
    }

    fn leg(&self, order_type: OrderType, limit: Option<Decimal>, stop: Option<Decimal>) -> Self {
        Self {
            id: Uuid::new_v4(),
            client_order_id: Uuid::new_v4().to_string(),
            side: self.side.opposite(),
            order_type,
            limit_price: limit,
            stop_price: stop,
            trail_percent: None,
            trail_price: None,
            notional: None,
            parent: Some(self.id),
            status: "held".to_owned(),
            ..self.clone()
        }
    }
}

fn forbidden(message: String) -> Refusal {
    Refusal {
        status: 403,
        code: 40310000,
        message,
    }
}

pub(super) fn not_found(what: &str) -> Refusal {
    Refusal {
        status: 404,
        code: 40410000,
        message: format!("{what} not found"),
    }
}

impl AccountState {
    /// Places a checked order: the account-level checks (unique client order
    /// id, buying power, shares held), then the entry and its legs, then an
    /// immediate match. Returns the order's body.
    pub fn place(&mut self, order: NewOrder, now: OffsetDateTime) -> Result<Value, Refusal> {
        if let Some(id) = &order.client_order_id
            && self.orders.iter().any(|o| &o.client_order_id == id)
        {
            return Err(Refusal {
                status: 422,
                code: 40010001,
                message: "client_order_id must be unique".into(),
            });
        }
        let market = self.price(&order.symbol);
        match order.side {
            Side::Buy => {
                let reference = order
                    .limit_price
                    .or(order.stop_price)
                    .or(market)
                    .unwrap_or_default();
                let cost = order
                    .notional
                    .unwrap_or_else(|| order.qty.unwrap_or_default() * reference);
                if cost > self.buying_power() {
                    return Err(forbidden("insufficient buying power".into()));
                }
            }
            Side::Sell => {
                let available = self.qty_held(&order.symbol) - self.qty_reserved(&order.symbol);
                let wanted = match (order.qty, order.notional, market) {
                    (Some(q), ..) => q,
                    (None, Some(n), Some(p)) => shares_for(n, p),
                    _ => Decimal::ZERO,
                };
                if wanted > available {
                    return Err(forbidden(format!(
                        "insufficient qty available for order (requested: {}, available: {})",
                        wanted.normalize(),
                        available.normalize()
                    )));
                }
            }
        }
        let client_order_id = order
            .client_order_id
            .clone()
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        let mut entry = SimOrder::new(&order, now, client_order_id);
        if entry.order_type == OrderType::TrailingStop {
            entry.hwm = market;
        }
        let id = entry.id;
        let mut legs = Vec::new();
        if let Some(tp) = order.take_profit {
            legs.push(entry.leg(OrderType::Limit, Some(tp), None));
        }
        if let Some((stop, limit)) = order.stop_loss {
            let kind = if limit.is_some() {
                OrderType::StopLimit
            } else {
                OrderType::Stop
            };
            legs.push(entry.leg(kind, limit, Some(stop)));
        }
        self.orders.push(entry);
        self.orders.extend(legs);
        self.match_symbol(&order.symbol, now);
        if let Some(i) = self.index(id)
            && self.orders[i].is_open()
            && matches!(order.time_in_force, TimeInForce::Ioc | TimeInForce::Fok)
        {
            self.cancel_group(id, now);
        }
        Ok(self.order_json(id, true))
    }

    fn index(&self, id: Uuid) -> Option<usize> {
        self.orders.iter().position(|o| o.id == id)
    }

    /// Runs every open order of `symbol` against its price until nothing changes.
    pub fn match_symbol(&mut self, symbol: &str, now: OffsetDateTime) {
        let Some(price) = self.price(symbol) else {
            return;
        };
        loop {
            let mut changed = false;
            for i in 0..self.orders.len() {
                if self.orders[i].symbol == symbol && self.orders[i].status == "new" {
                    changed |= self.try_fill(i, price, now);
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn try_fill(&mut self, i: usize, price: Decimal, now: OffsetDateTime) -> bool {
        let o = &mut self.orders[i];
        let buy = o.side == Side::Buy;
        let reached = |level: Decimal| if buy { price >= level } else { price <= level };
        let within = |limit: Decimal| if buy { price <= limit } else { price >= limit };
        let fills = match o.order_type {
            OrderType::Market => true,
            OrderType::Limit => o.limit_price.is_some_and(within),
            OrderType::Stop => o.stop_price.is_some_and(reached),
            OrderType::StopLimit => {
                if !o.triggered && o.stop_price.is_some_and(reached) {
                    o.triggered = true;
                }
                o.triggered && o.limit_price.is_some_and(within)
            }
            OrderType::TrailingStop => {
                let best = match (o.hwm, buy) {
                    (Some(h), true) => h.min(price),
                    (Some(h), false) => h.max(price),
                    (None, _) => price,
                };
                o.hwm = Some(best);
                let stop = match (o.trail_price, o.trail_percent) {
                    (Some(amount), _) if buy => best + amount,
                    (Some(amount), _) => best - amount,
                    (None, Some(pct)) => {
                        let factor = pct / Decimal::ONE_HUNDRED;
                        let offset = best * factor;
                        if buy { best + offset } else { best - offset }
                    }
                    (None, None) => best,
                };
                let stop = stop.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
                o.stop_price = Some(stop);
                reached(stop)
            }
        };
        if !fills {
            return false;
        }
        let qty = o
            .qty
            .unwrap_or_else(|| shares_for(o.notional.unwrap_or_default(), price));
        o.status = "filled".to_owned();
        o.filled_qty = qty;
        o.filled_avg_price = Some(price);
        o.filled_at = Some(now);
        let (id, symbol, side, parent) = (o.id, o.symbol.clone(), o.side, o.parent);
        self.apply_fill(&symbol, side, qty, price);
        self.record_fill(&symbol, side, qty, price, id, now);
        for leg in self.orders.iter_mut().filter(|l| l.parent == Some(id)) {
            if leg.status == "held" {
                leg.status = "new".to_owned();
            }
        }
        if let Some(parent) = parent {
            for sibling in self
                .orders
                .iter_mut()
                .filter(|l| l.parent == Some(parent) && l.id != id)
            {
                if sibling.is_open() {
                    sibling.status = "canceled".to_owned();
                    sibling.canceled_at = Some(now);
                }
            }
        }
        true
    }

    fn cancel_one(&mut self, i: usize, now: OffsetDateTime) {
        let o = &mut self.orders[i];
        if o.is_open() {
            o.status = "canceled".to_owned();
            o.canceled_at = Some(now);
        }
    }

    /// Cancels an order with its open legs, or a leg with its open sibling.
    fn cancel_group(&mut self, id: Uuid, now: OffsetDateTime) {
        let Some(i) = self.index(id) else { return };
        let group = self.orders[i].parent.unwrap_or(id);
        let members: Vec<usize> = (0..self.orders.len())
            .filter(|&j| {
                self.orders[j].id == id
                    || self.orders[j].parent == Some(group)
                    || (self.orders[j].id == group && self.orders[j].is_open())
            })
            .collect();
        for j in members {
            self.cancel_one(j, now);
        }
    }

    /// `DELETE /v2/orders/{id}`.
    pub fn cancel(&mut self, id: Uuid, now: OffsetDateTime) -> Result<(), Refusal> {
        let i = self.index(id).ok_or_else(|| not_found("order"))?;
        if !self.orders[i].is_open() {
            return Err(unprocessable(format!(
                "order is already in \"{}\" state",
                self.orders[i].status
            )));
        }
        self.cancel_group(id, now);
        Ok(())
    }

    /// `DELETE /v2/orders`: one `{id, status, body}` per cancelled order.
    pub fn cancel_all(&mut self, now: OffsetDateTime) -> Vec<Value> {
        let open: Vec<Uuid> = self
            .orders
            .iter()
            .filter(|o| o.is_open())
            .map(|o| o.id)
            .collect();
        for id in &open {
            if let Some(i) = self.index(*id) {
                self.cancel_one(i, now);
            }
        }
        open.into_iter()
            .map(|id| json!({"id": id, "status": 200, "body": self.order_json(id, false)}))
            .collect()
    }

    /// `DELETE /v2/positions/{symbol}`: sells all (or `qty`, or `percentage`)
    /// of a position at market.
    pub fn close_position(
        &mut self,
        symbol: &str,
        qty: Option<Decimal>,
        percentage: Option<Decimal>,
        now: OffsetDateTime,
    ) -> Result<Value, Refusal> {
        let held = self.qty_held(symbol);
        if held.is_zero() {
            return Err(not_found("position"));
        }
        if !data::asset(symbol).is_some_and(|a| a.tradable) || self.price(symbol).is_none() {
            return Err(unprocessable(format!("asset \"{symbol}\" is not tradable")));
        }
        let qty = match (qty, percentage) {
            (Some(_), Some(_)) => {
                return Err(unprocessable("only one of qty or percentage may be given"));
            }
            (Some(q), None) => q,
            (None, Some(p)) if p <= Decimal::ONE_HUNDRED => (held * p / Decimal::ONE_HUNDRED)
                .round_dp_with_strategy(9, RoundingStrategy::ToZero),
            (None, Some(_)) => return Err(unprocessable("percentage must be between 0 and 100")),
            (None, None) => held - self.qty_reserved(symbol),
        };
        let order = NewOrder {
            symbol: symbol.to_owned(),
            qty: Some(qty),
            notional: None,
            side: Side::Sell,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Day,
            limit_price: None,
            stop_price: None,
            trail_percent: None,
            trail_price: None,
            extended_hours: false,
            order_class: "simple",
            take_profit: None,
            stop_loss: None,
            client_order_id: None,
        };
        self.place(order, now)
    }

    /// `DELETE /v2/positions?cancel_orders=…`: one `{symbol, status, body}` per position.
    pub fn close_all(&mut self, cancel_orders: bool, now: OffsetDateTime) -> Vec<Value> {
        if cancel_orders {
            self.cancel_all(now);
        }
        let symbols: Vec<String> = self.positions.iter().map(|h| h.symbol.clone()).collect();
        symbols
            .into_iter()
            .map(
                |symbol| match self.close_position(&symbol, None, None, now) {
                    Ok(body) => json!({"symbol": symbol, "status": 200, "body": body}),
                    Err(r) => json!({"symbol": symbol, "status": r.status,
                    "body": {"code": r.code, "message": r.message, "symbol": symbol}}),
                },
            )
            .collect()
    }
}

/// Whole and fractional shares `notional` buys at `price` (9 decimals, rounded down).
fn shares_for(notional: Decimal, price: Decimal) -> Decimal {
    notional
        .checked_div(price)
        .unwrap_or_default()
        .round_dp_with_strategy(9, RoundingStrategy::ToZero)
}
