//! Integration tests: real PostgreSQL, real HTTP, the project's Alpaca simulator.

mod a11y;
mod activity;
mod auth;
mod backup;
mod browser;
mod browser_security;
mod cli;
mod console;
mod credentials;
mod embedded;
mod helpers;
mod input;
mod isolation;
mod ops;
mod passkey_attacks;
mod passkeys;
mod portfolio;
mod process;
mod resilience;
mod slow_clients;
mod soft_authenticator;
mod starvation;
