//! Typed models of the Alpaca Trading API bodies Paddock reads and sends.
//!
//! Field names are Alpaca's. Money and quantities are [`rust_decimal::Decimal`],
//! never floating point. Every field is read leniently ([`lenient`]): Alpaca's
//! real bodies send numbers as strings or as numbers, `null` prices, `""` on
//! multi-leg parents, new fields and new enum values, and one such field
//! never costs the whole body.

mod account;
mod activity;
mod history;
pub mod lenient;
mod market;
mod order;

pub use account::{Account, Position};
pub use activity::Activity;
pub use history::{HistoryPoint, PortfolioHistory, normalize_timestamp};
pub use market::{Asset, Clock};
pub use order::{
    BulkResult, Order, OrderClass, OrderRequest, OrderStatusFilter, StopLoss, TakeProfit,
};
