//! Integration tests: real PostgreSQL, real HTTP, the project's Alpaca simulator.

mod activity;
mod auth;
mod backup;
mod browser;
mod cli;
mod console;
mod credentials;
mod devices;
mod embedded;
mod haproxy;
mod helpers;
mod input;
mod isolation;
mod ops;
mod portfolio;
mod process;
mod proxy;
mod replicas;
mod resilience;
mod slow_clients;
mod starvation;
