//! Alpaca trading API: a typed HTTP client ([`Client`]) and an offline,
//! deterministic simulator of the same endpoints ([`sim`]).

pub mod asset_cache;
pub mod client;
pub mod endpoints;
pub mod error;
pub mod models;
pub mod sim;

pub use crate::domain::{Environment, OrderType, Side, TimeInForce};
pub use client::{ApiKeys, Client, ClientConfig, MAX_BODY_BYTES};
pub use error::AlpacaError;
pub use models::{
    Account, Activity, Asset, BulkResult, Clock, HistoryPoint, Order, OrderClass, OrderRequest,
    OrderStatusFilter, PortfolioHistory, Position, StopLoss, TakeProfit,
};
