//! Integration tests: real PostgreSQL, real HTTP, the project's Alpaca simulator.

mod account_actions;
mod account_security;
mod activity;
mod auth;
mod backup;
mod browser;
mod browser_trading;
mod cli;
mod console;
mod credentials;
mod devices;
mod embedded;
mod haproxy;
mod helpers;
mod input;
mod isolation;
mod lifecycle;
mod ops;
mod portfolio;
mod process;
mod proxy;
mod replicas;
mod resilience;
mod slow_clients;
mod starvation;
mod trading;
