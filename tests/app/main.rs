//! Integration tests: real PostgreSQL, real HTTP, the project's Alpaca simulator.

mod account_actions;
mod auth;
mod browser;
mod browser_trading;
mod cli;
mod credentials;
mod helpers;
mod isolation;
mod portfolio;
mod resilience;
mod starvation;
mod trading;
