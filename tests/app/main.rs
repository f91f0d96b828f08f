//! Integration tests: real PostgreSQL, real HTTP, the project's Alpaca simulator.

mod auth;
mod browser;
mod cli;
mod console;
mod credentials;
mod helpers;
mod input;
mod isolation;
mod portfolio;
mod resilience;
mod starvation;
