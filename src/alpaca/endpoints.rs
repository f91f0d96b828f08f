//! The Trading API endpoints Paddock uses, one method each, all through the
//! client's single send path.

use reqwest::Method;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::alpaca::{
    client::{ApiKeys, Call, Client, decode, decode_list},
    error::AlpacaError,
    models::{
        Account, Activity, Asset, BulkResult, Clock, Order, OrderRequest, OrderStatusFilter,
        PortfolioHistory, Position,
    },
};
use crate::domain::Environment;

/// Most activities Alpaca returns per page.
pub const MAX_ACTIVITY_PAGE: u32 = 100;

impl Client {
    /// `GET /v2/account`.
    pub async fn account(&self, env: Environment, keys: &ApiKeys) -> Result<Account, AlpacaError> {
        let body = self.send(Call::get(env, "/v2/account", &[]), keys).await?;
        decode("GET /v2/account", &body)
    }

    /// `GET /v2/positions`.
    pub async fn positions(
        &self,
        env: Environment,
        keys: &ApiKeys,
    ) -> Result<Vec<Position>, AlpacaError> {
        let body = self
            .send(Call::get(env, "/v2/positions", &[]), keys)
            .await?;
        decode_list("GET /v2/positions", &body)
    }

    /// `GET /v2/orders?status=..&limit=..&direction=desc&nested=true`: newest
    /// first, the legs of bracket and multi-leg orders under their parent.
    pub async fn orders(
        &self,
        env: Environment,
        keys: &ApiKeys,
        status: OrderStatusFilter,
        limit: u32,
    ) -> Result<Vec<Order>, AlpacaError> {
        let limit = limit.to_string();
        let query = [
            ("status", status.as_str()),
            ("limit", limit.as_str()),
            ("direction", "desc"),
            ("nested", "true"),
        ];
        let body = self
            .send(Call::get(env, "/v2/orders", &query), keys)
            .await?;
        decode_list("GET /v2/orders", &body)
    }

    /// `GET /v2/orders:by_client_order_id`: the order Paddock placed under
    /// `client_order_id`; [`AlpacaError::NotFound`] when Alpaca has none.
    pub async fn order_by_client_id(
        &self,
        env: Environment,
        keys: &ApiKeys,
        client_order_id: &str,
    ) -> Result<Order, AlpacaError> {
        let query = [("client_order_id", client_order_id), ("nested", "true")];
        let call = Call::get(env, "/v2/orders:by_client_order_id", &query);
        let body = self.send(call, keys).await?;
        decode("GET /v2/orders:by_client_order_id", &body)
    }

    /// `GET /v2/account/portfolio/history?period=..&timeframe=..`, e.g.
    /// period `"1M"`, timeframe `"1D"`.
    pub async fn portfolio_history(
        &self,
        env: Environment,
        keys: &ApiKeys,
        period: &str,
        timeframe: &str,
    ) -> Result<PortfolioHistory, AlpacaError> {
        let query = [("period", period), ("timeframe", timeframe)];
        let call = Call::get(env, "/v2/account/portfolio/history", &query);
        let body = self.send(call, keys).await?;
        decode("GET /v2/account/portfolio/history", &body)
    }

    /// `GET /v2/account/activities`, newest first, `page_size` of them after
    /// `page_token` (the id of the last activity of the previous page).
    pub async fn activities(
        &self,
        env: Environment,
        keys: &ApiKeys,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<Vec<Activity>, AlpacaError> {
        let size = page_size.clamp(1, MAX_ACTIVITY_PAGE).to_string();
        let mut query = vec![("direction", "desc"), ("page_size", size.as_str())];
        if let Some(token) = page_token {
            query.push(("page_token", token));
        }
        let call = Call::get(env, "/v2/account/activities", &query);
        let body = self.send(call, keys).await?;
        decode_list("GET /v2/account/activities", &body)
    }

    /// `GET /v2/assets/{symbol}`, reused for a while per environment and
    /// symbol (see [`crate::alpaca::asset_cache`]); unknown symbols are
    /// [`AlpacaError::NotFound`] and are not remembered.
    pub async fn asset(
        &self,
        env: Environment,
        keys: &ApiKeys,
        symbol: &str,
    ) -> Result<Asset, AlpacaError> {
        if let Some(asset) = self.assets.get(env, symbol) {
            return Ok(asset);
        }
        let path = format!("/v2/assets/{}", path_segment(symbol));
        let body = self.send(Call::get(env, &path, &[]), keys).await?;
        let asset: Asset = decode("GET /v2/assets/{symbol}", &body)?;
        self.assets.put(env, symbol, asset.clone());
        Ok(asset)
    }

    /// `GET /v2/clock`.
    pub async fn clock(&self, env: Environment, keys: &ApiKeys) -> Result<Clock, AlpacaError> {
        let body = self.send(Call::get(env, "/v2/clock", &[]), keys).await?;
        decode("GET /v2/clock", &body)
    }

    /// `POST /v2/orders`. A 403 here means Alpaca refused the order
    /// ([`AlpacaError::Refused`]), not the keys.
    pub async fn place_order(
        &self,
        env: Environment,
        keys: &ApiKeys,
        order: &OrderRequest,
    ) -> Result<Order, AlpacaError> {
        let payload = serde_json::to_vec(order)
            .map_err(|e| AlpacaError::Unprocessable(format!("could not encode order: {e}")))?;
        let mut call = Call::write(env, Method::POST, "/v2/orders", &[]);
        call.json_body = Some(payload);
        let body = self.send(call, keys).await?;
        decode("POST /v2/orders", &body)
    }

    /// `DELETE /v2/orders/{id}` (Alpaca answers 204).
    pub async fn cancel_order(
        &self,
        env: Environment,
        keys: &ApiKeys,
        order_id: Uuid,
    ) -> Result<(), AlpacaError> {
        let path = format!("/v2/orders/{order_id}");
        self.send(Call::write(env, Method::DELETE, &path, &[]), keys)
            .await?;
        Ok(())
    }

    /// `DELETE /v2/orders`: cancels every open order; one result per order (207).
    pub async fn cancel_all_orders(
        &self,
        env: Environment,
        keys: &ApiKeys,
    ) -> Result<Vec<BulkResult>, AlpacaError> {
        let call = Call::write(env, Method::DELETE, "/v2/orders", &[]);
        let body = self.send(call, keys).await?;
        decode_bulk("DELETE /v2/orders", &body)
    }

    /// `DELETE /v2/positions/{symbol}[?qty=..]`: closes all of a position, or
    /// `qty` of it, with a market order, which is returned.
    pub async fn close_position(
        &self,
        env: Environment,
        keys: &ApiKeys,
        symbol: &str,
        qty: Option<Decimal>,
    ) -> Result<Order, AlpacaError> {
        let path = format!("/v2/positions/{}", path_segment(symbol));
        let qty = qty.map(|q| q.to_string());
        let query: Vec<(&str, &str)> = qty.iter().map(|q| ("qty", q.as_str())).collect();
        let call = Call::write(env, Method::DELETE, &path, &query);
        let body = self.send(call, keys).await?;
        decode("DELETE /v2/positions/{symbol}", &body)
    }

    /// `DELETE /v2/positions?cancel_orders=true`: cancels open orders, then
    /// closes every position; one result per position (207).
    pub async fn close_all_positions(
        &self,
        env: Environment,
        keys: &ApiKeys,
    ) -> Result<Vec<BulkResult>, AlpacaError> {
        let query = [("cancel_orders", "true")];
        let call = Call::write(env, Method::DELETE, "/v2/positions", &query);
        let body = self.send(call, keys).await?;
        decode_bulk("DELETE /v2/positions", &body)
    }
}

/// A 207 list; an empty body (nothing to cancel or close) is an empty list.
fn decode_bulk(endpoint: &str, body: &[u8]) -> Result<Vec<BulkResult>, AlpacaError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    decode_list(endpoint, body)
}

/// A symbol as one URL path segment: letters, digits, `.`, `-` and `_` as
/// they are, anything else (`/` of a crypto pair) percent-encoded.
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_become_single_path_segments() {
        assert_eq!(path_segment("BRK.B"), "BRK.B");
        assert_eq!(path_segment("BTC/USD"), "BTC%2FUSD");
        assert_eq!(path_segment("A B?"), "A%20B%3F");
    }

    #[test]
    fn an_empty_bulk_answer_is_an_empty_list() {
        assert!(
            decode_bulk("DELETE /v2/orders", b"")
                .expect("empty")
                .is_empty()
        );
        assert!(
            decode_bulk("DELETE /v2/orders", b"[]")
                .expect("empty")
                .is_empty()
        );
    }
}
