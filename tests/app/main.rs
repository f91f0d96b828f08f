//! Integration tests: real PostgreSQL, real HTTP, the project's Alpaca simulator.

mod account_actions;
mod account_security;
mod activity;
mod auth;
mod backup;
mod browser;
mod browser_trading;
mod cache;
mod cli;
mod console;
mod credentials;
mod embedded;
mod helpers;
mod input;
mod isolation;
mod lifecycle;
mod ops;
mod portfolio;
mod process;
mod resilience;
mod slow_clients;
mod starvation;
mod trading;
