//! Paddock: a self-hosted front end for Alpaca where each member's API keys stay
//! sealed and PostgreSQL row-level security keeps members apart.

pub mod activity;
pub mod alpaca;
pub mod attest;
pub mod backup;
pub mod chart;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod eastern;
pub mod error;
pub mod maintenance;
pub mod metrics;
pub mod money;
pub mod net;
pub mod passkey;
pub mod password;
pub mod portfolio;
pub mod retention;
pub mod seal;
pub mod server;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod token;
pub mod totp;
pub mod trading;
pub mod upgrade;
pub mod vault;
pub mod web;
