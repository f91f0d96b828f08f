//! The `paddock` command: parse, set up logging, dispatch.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    match paddock::config::LogFormat::from_env() {
        Ok(format) => paddock::telemetry::init(format),
        Err(e) => {
            eprintln!("paddock: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let cli = paddock::cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paddock: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(paddock::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paddock: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
