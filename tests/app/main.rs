//! Integration tests: real PostgreSQL, real HTTP, the project's Alpaca simulator.

mod auth;
mod browser;
mod cli;
mod credentials;
mod helpers;
mod isolation;
mod portfolio;
mod resilience;
mod slow_clients;
