//! Logging: `RUST_LOG` (default `info`) to standard error, as text or as one
//! JSON object per line (`PADDOCK_LOG_FORMAT=json`).

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls do nothing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        // The message and fields at the top level: {"level":"INFO","message":…}.
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
