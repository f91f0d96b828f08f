//! Integration tests: real PostgreSQL, real HTTP, the project's Alpaca simulator.

mod auth;
mod helpers;
mod isolation;
