//! Alpaca's JSON for a simulated account's orders: one order (with its legs
//! when nested), the filtered list, and the lookup by client order id.

use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::alpaca::sim::data;
use crate::alpaca::sim::orders::{SimOrder, not_found};
use crate::alpaca::sim::state::{AccountState, opt_ts, ts};
use crate::alpaca::sim::validate::Refusal;
use crate::domain::Side;

impl AccountState {
    /// The order placed under `client_order_id`.
    pub fn by_client_order_id(&self, client_order_id: &str) -> Result<Value, Refusal> {
        self.orders
            .iter()
            .find(|o| o.client_order_id == client_order_id)
            .map(|o| self.order_json(o.id, true))
            .ok_or_else(|| not_found("order"))
    }

    /// `GET /v2/orders`: `status` open, closed or all; newest first unless
    /// `ascending`; with `nested`, legs appear under their entry, which counts
    /// as open while a leg is.
    pub fn list_orders(&self, status: &str, limit: usize, ascending: bool, nested: bool) -> Value {
        let open_group = |o: &SimOrder| {
            o.is_open()
                || (nested
                    && self
                        .orders
                        .iter()
                        .any(|l| l.parent == Some(o.id) && l.is_open()))
        };
        let mut list: Vec<&SimOrder> = self
            .orders
            .iter()
            .filter(|o| !nested || o.parent.is_none())
            .filter(|o| match status {
                "open" => open_group(o),
                "closed" => !open_group(o),
                _ => true,
            })
            .collect();
        if !ascending {
            list.reverse();
        }
        Value::Array(
            list.into_iter()
                .take(limit)
                .map(|o| self.order_json(o.id, nested))
                .collect(),
        )
    }

    /// Alpaca's order body; with `nested`, the legs under `legs`.
    pub fn order_json(&self, id: Uuid, nested: bool) -> Value {
        let Some(o) = self.orders.iter().find(|o| o.id == id) else {
            return Value::Null;
        };
        let legs: Vec<Value> = self
            .orders
            .iter()
            .filter(|l| l.parent == Some(id))
            .map(|l| self.order_json(l.id, false))
            .collect();
        let updated = o.canceled_at.or(o.filled_at).unwrap_or(o.created_at);
        let money = |v: Option<Decimal>| v.map(data::money);
        json!({
            "id": o.id,
            "client_order_id": o.client_order_id,
            "created_at": ts(o.created_at),
            "updated_at": ts(updated),
            "submitted_at": ts(o.created_at),
            "filled_at": opt_ts(o.filled_at),
            "expired_at": null,
            "canceled_at": opt_ts(o.canceled_at),
            "failed_at": null,
            "replaced_at": null,
            "replaced_by": null,
            "replaces": null,
            "asset_id": data::asset_id(&o.symbol),
            "symbol": o.symbol,
            "asset_class": "us_equity",
            "notional": o.notional.map(data::money),
            "qty": o.qty.map(data::quantity),
            "filled_qty": data::quantity(o.filled_qty),
            "filled_avg_price": money(o.filled_avg_price),
            "order_class": o.order_class,
            "order_type": o.order_type.as_str(),
            "type": o.order_type.as_str(),
            "side": o.side.as_str(),
            "position_intent": match o.side { Side::Buy => "buy_to_open", Side::Sell => "sell_to_close" },
            "time_in_force": o.time_in_force.as_str(),
            "limit_price": money(o.limit_price),
            "stop_price": money(o.stop_price),
            "status": o.status,
            "extended_hours": o.extended_hours,
            "legs": if nested && !legs.is_empty() { Value::Array(legs) } else { Value::Null },
            "trail_percent": o.trail_percent.map(|p| p.normalize().to_string()),
            "trail_price": money(o.trail_price),
            "hwm": money(o.hwm),
            "subtag": null,
            "source": null,
            "expires_at": null
        })
    }
}
