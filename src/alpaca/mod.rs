//! Alpaca trading API: a typed HTTP client ([`Client`]) and an offline,
//! deterministic simulator of the same endpoints ([`sim`]).

pub mod client;
pub mod error;
pub mod models;
pub mod sim;

pub use client::{ApiKeys, Client, ClientConfig, Environment};
pub use error::AlpacaError;
pub use models::{
    Account, HistoryPoint, Order, OrderRequest, OrderStatusFilter, OrderType, PortfolioHistory,
    Position, Side, TimeInForce,
};
