//! Typed settings, read once at start-up from the environment (and `.env`).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::SecretString;

use crate::{alpaca::ClientConfig, net::TrustedProxies};

/// Whether this is a developer's machine or a real deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnv {
    Development,
    Production,
}

/// Who may create a new organization at `/signup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupMode {
    /// Anyone may create an organization; invites join existing ones.
    Open,
    /// Only invite codes are accepted.
    InviteOnly,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (level, message, fields, span).
    Json,
}

impl LogFormat {
    /// `PADDOCK_LOG_FORMAT` from the process environment (read before logging starts).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match var("PADDOCK_LOG_FORMAT").as_deref() {
            None | Some("text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(_) => Err(ConfigError(
                "PADDOCK_LOG_FORMAT must be `text` or `json`".into(),
            )),
        }
    }
}

/// Where the database lives.
#[derive(Clone, Debug)]
pub enum DatabaseSettings {
    /// A private cluster in the data dir, provisioned on demand.
    Embedded,
    /// Operator-provided URLs: the runtime (app role) and admin (owner) connections.
    External {
        url: SecretString,
        admin_url: SecretString,
    },
}

/// Everything the process needs to know, parsed and validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database: DatabaseSettings,
    pub data_dir: PathBuf,
    pub seal_keys: Option<SecretString>,
    pub run_env: RunEnv,
    pub alpaca: ClientConfig,
    pub signup: SignupMode,
    /// The public origin (`PADDOCK_PUBLIC_URL`), e.g. `https://paddock.example.org`.
    pub public_url: Option<PublicUrl>,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Where `/metrics` is served; `None` (the default): nowhere.
    pub metrics_bind: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// `credential_used` events older than this many days are pruned.
    pub use_events_retention_days: u32,
    /// How long an account read from Alpaca is reused (`PADDOCK_ALPACA_CACHE_SECS`);
    /// zero: never, and concurrent views do not share calls either.
    pub alpaca_cache: Duration,
}

/// The origin Paddock is reached at: scheme, host and port, nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    pub https: bool,
    pub host: String,
    pub port: Option<u16>,
}

impl PublicUrl {
    /// Parses `http(s)://host[:port]` (a trailing `/` allowed, nothing more).
    pub fn parse(raw: &str) -> Option<Self> {
        let (https, rest) = if let Some(rest) = raw.strip_prefix("https://") {
            (true, rest)
        } else {
            (false, raw.strip_prefix("http://")?)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = if rest.starts_with('[') {
            let end = rest.find(']')? + 1;
            (&rest[..end], rest[end..].strip_prefix(':'))
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c));
        valid.then(|| Self {
            https,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The port, with the scheme's default filled in.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(if self.https { 443 } else { 80 })
    }

    /// The origin as browsers send it in `Origin`: `https://host[:port]`.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(port) => format!("{scheme}://{}:{port}", self.host),
            None => format!("{scheme}://{}", self.host),
        }
    }

    /// Whether a request's `Host` header names this origin (the port may be left
    /// out when it is the scheme's default).
    pub fn is_host(&self, host: &str) -> bool {
        let scheme = if self.https { "https://" } else { "http://" };
        Self::parse(&format!("{scheme}{host}")).is_some_and(|h| self.same_origin(&h))
    }

    /// Whether an `Origin` header is exactly this origin.
    pub fn is_origin(&self, origin: &str) -> bool {
        Self::parse(origin).is_some_and(|o| !origin.ends_with('/') && self.same_origin(&o))
    }

    fn same_origin(&self, other: &Self) -> bool {
        self.https == other.https
            && self.host == other.host
            && self.effective_port() == other.effective_port()
    }

    /// Whether the host is an IP address (WebAuthn needs a domain name).
    pub fn host_is_ip(&self) -> bool {
        self.host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
    }
}

/// How long account reads are reused unless `PADDOCK_ALPACA_CACHE_SECS` says otherwise.
pub const DEFAULT_ALPACA_CACHE: Duration = Duration::from_secs(2);

/// A configuration problem, phrased for the operator.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the settings through `var`, so tests need not touch the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let bind = var("PADDOCK_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .map_err(|_| ConfigError("PADDOCK_BIND must look like 127.0.0.1:8080".into()))?;
        let run_env = match var("PADDOCK_ENV").as_deref() {
            None | Some("development") => RunEnv::Development,
            Some("production") => RunEnv::Production,
            Some(_) => {
                return Err(ConfigError(
                    "PADDOCK_ENV must be `development` or `production`".into(),
                ));
            }
        };
        let database = match (var("DATABASE_URL"), var("DATABASE_ADMIN_URL")) {
            (None, None) => DatabaseSettings::Embedded,
            (Some(url), Some(admin_url)) => DatabaseSettings::External {
                url: url.into(),
                admin_url: admin_url.into(),
            },
            _ => {
                return Err(ConfigError(
                    "set both DATABASE_URL (app role) and DATABASE_ADMIN_URL (owner role), or neither to use the embedded database".into(),
                ));
            }
        };
        let seal_keys: Option<SecretString> = var("PADDOCK_SEAL_KEYS").map(Into::into);
        if run_env == RunEnv::Production {
            if matches!(database, DatabaseSettings::Embedded) {
                return Err(ConfigError(
                    "production requires DATABASE_URL and DATABASE_ADMIN_URL".into(),
                ));
            }
            if seal_keys.is_none() {
                return Err(ConfigError(
                    "production requires PADDOCK_SEAL_KEYS; create one with `paddock keys generate`".into(),
                ));
            }
        }
        let signup = match var("PADDOCK_SIGNUP").as_deref() {
            None | Some("open") => SignupMode::Open,
            Some("invite-only") => SignupMode::InviteOnly,
            Some(_) => {
                return Err(ConfigError(
                    "PADDOCK_SIGNUP must be `open` or `invite-only`".into(),
                ));
            }
        };
        let public_url = match var("PADDOCK_PUBLIC_URL") {
            None => None,
            Some(raw) => Some(PublicUrl::parse(&raw).ok_or_else(|| {
                ConfigError(
                    "PADDOCK_PUBLIC_URL must look like https://paddock.example.org (scheme, host and optional port)".into(),
                )
            })?),
        };
        let trusted_proxies = TrustedProxies::parse(
            &var("PADDOCK_TRUSTED_PROXIES").unwrap_or_default(),
        )
        .map_err(|e| {
            ConfigError(format!(
                "PADDOCK_TRUSTED_PROXIES must be comma-separated CIDR blocks like 10.0.0.0/8, ::1/128: {e}"
            ))
        })?;
        let defaults = ClientConfig::default();
        let seconds = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            match var(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0 && *s < 3600.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| ConfigError(format!("{name} must be a number of seconds"))),
            }
        };
        let alpaca = ClientConfig {
            paper_url: var("ALPACA_PAPER_URL").unwrap_or(defaults.paper_url),
            live_url: var("ALPACA_LIVE_URL").unwrap_or(defaults.live_url),
            connect_timeout: seconds("ALPACA_CONNECT_TIMEOUT", defaults.connect_timeout)?,
            request_timeout: seconds("ALPACA_REQUEST_TIMEOUT", defaults.request_timeout)?,
        };
        let metrics_bind = match var("PADDOCK_METRICS_BIND").as_deref() {
            None | Some("off") => None,
            Some(addr) => Some(addr.parse().map_err(|_| {
                ConfigError(
                    "PADDOCK_METRICS_BIND must look like 127.0.0.1:9090 (or be unset, or `off`)"
                        .into(),
                )
            })?),
        };
        let use_events_retention_days = match var("PADDOCK_USE_EVENTS_RETENTION_DAYS") {
            None => 400,
            Some(v) => v.parse().ok().filter(|d| (1..=36_500).contains(d)).ok_or_else(|| {
                ConfigError(
                    "PADDOCK_USE_EVENTS_RETENTION_DAYS must be a whole number of days from 1 to 36500"
                        .into(),
                )
            })?,
        };
        let alpaca_cache = match var("PADDOCK_ALPACA_CACHE_SECS") {
            None => DEFAULT_ALPACA_CACHE,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 3600)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    ConfigError(
                        "PADDOCK_ALPACA_CACHE_SECS must be a whole number of seconds from 0 (off) to 3600"
                            .into(),
                    )
                })?,
        };
        Ok(Self {
            alpaca_cache,
            log_format: LogFormat::from_lookup(&var)?,
            metrics_bind,
            use_events_retention_days,
            bind,
            database,
            data_dir: var("PADDOCK_DATA_DIR")
                .unwrap_or_else(|| "./.paddock".into())
                .into(),
            seal_keys,
            run_env,
            alpaca,
            signup,
            public_url,
            trusted_proxies,
        })
    }

    /// The WebAuthn relying party: the public URL's host, `localhost` when it is
    /// unset; none (passkeys unavailable) when that host is an IP address.
    pub fn passkeys_rp_id(&self) -> Option<String> {
        match &self.public_url {
            None => Some("localhost".into()),
            Some(url) if url.host_is_ip() => None,
            Some(url) => Some(url.host.clone()),
        }
    }

    /// Whether cookies are `Secure`: with a public URL, when it is `https`
    /// (behind a TLS proxy Paddock itself binds loopback); without one, unless
    /// we serve plain HTTP on loopback.
    pub fn secure_cookies(&self) -> bool {
        match &self.public_url {
            Some(url) => url.https,
            None => !self.bind.ip().is_loopback(),
        }
    }

    /// Whether responses carry `Strict-Transport-Security`: only when the
    /// public URL is `https`.
    pub fn hsts(&self) -> bool {
        self.public_url.as_ref().is_some_and(|url| url.https)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = settings(&[]).expect("defaults parse");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert!(matches!(s.database, DatabaseSettings::Embedded));
        assert_eq!(s.run_env, RunEnv::Development);
        assert_eq!(s.signup, SignupMode::Open);
        assert_eq!(s.alpaca.paper_url, "https://paper-api.alpaca.markets");
        assert!(!s.secure_cookies());
        assert_eq!(s.metrics_bind, None);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.use_events_retention_days, 400);
        assert_eq!(s.alpaca_cache, Duration::from_secs(2));
    }

    #[test]
    fn the_alpaca_cache_is_whole_seconds_and_zero_turns_it_off() {
        let s = settings(&[("PADDOCK_ALPACA_CACHE_SECS", "0")]).expect("parses");
        assert_eq!(s.alpaca_cache, Duration::ZERO);
        let s = settings(&[("PADDOCK_ALPACA_CACHE_SECS", "30")]).expect("parses");
        assert_eq!(s.alpaca_cache, Duration::from_secs(30));
        for bad in ["-1", "1.5", "two", "3601"] {
            let err = settings(&[("PADDOCK_ALPACA_CACHE_SECS", bad)]).expect_err(bad);
            assert!(
                err.to_string().contains("PADDOCK_ALPACA_CACHE_SECS"),
                "{bad}"
            );
        }
    }

    #[test]
    fn metrics_are_served_only_where_asked() {
        let s = settings(&[("PADDOCK_METRICS_BIND", "127.0.0.1:9090")]).expect("parses");
        assert_eq!(
            s.metrics_bind,
            Some("127.0.0.1:9090".parse().expect("addr"))
        );
        let s = settings(&[("PADDOCK_METRICS_BIND", "off")]).expect("parses");
        assert_eq!(s.metrics_bind, None);
        let err = settings(&[("PADDOCK_METRICS_BIND", ":9090")]).expect_err("no host");
        assert!(err.to_string().contains("PADDOCK_METRICS_BIND"));
    }

    #[test]
    fn log_format_is_text_or_json() {
        let s = settings(&[("PADDOCK_LOG_FORMAT", "json")]).expect("parses");
        assert_eq!(s.log_format, LogFormat::Json);
        let err = settings(&[("PADDOCK_LOG_FORMAT", "yaml")]).expect_err("unknown");
        assert!(err.to_string().contains("`text` or `json`"));
    }

    #[test]
    fn retention_is_a_positive_number_of_days() {
        let s = settings(&[("PADDOCK_USE_EVENTS_RETENTION_DAYS", "30")]).expect("parses");
        assert_eq!(s.use_events_retention_days, 30);
        for bad in ["0", "-1", "1.5", "forever", "36501"] {
            let err = settings(&[("PADDOCK_USE_EVENTS_RETENTION_DAYS", bad)]).expect_err(bad);
            assert!(err.to_string().contains("RETENTION_DAYS"), "{bad}");
        }
    }

    #[test]
    fn production_requires_keys_and_database() {
        let err = settings(&[("PADDOCK_ENV", "production")]).expect_err("must refuse");
        assert!(err.to_string().contains("DATABASE_URL"));
        let err = settings(&[
            ("PADDOCK_ENV", "production"),
            ("DATABASE_URL", "postgres://a@h/db"),
            ("DATABASE_ADMIN_URL", "postgres://b@h/db"),
        ])
        .expect_err("must refuse");
        assert!(err.to_string().contains("paddock keys generate"));
    }

    #[test]
    fn half_a_database_configuration_is_refused() {
        assert!(settings(&[("DATABASE_URL", "postgres://a@h/db")]).is_err());
    }

    #[test]
    fn public_urls_are_origins_and_name_the_passkey_relying_party() {
        let url = PublicUrl::parse("https://Paddock.Example.org/").expect("parses");
        assert_eq!(
            url,
            PublicUrl {
                https: true,
                host: "paddock.example.org".into(),
                port: None
            }
        );
        assert_eq!(
            PublicUrl::parse("http://localhost:8080").map(|u| u.port),
            Some(Some(8080))
        );
        for bad in [
            "paddock.example.org",
            "https://x.org/path",
            "ftp://x.org",
            "https://",
        ] {
            assert!(PublicUrl::parse(bad).is_none(), "{bad}");
        }
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.passkeys_rp_id().as_deref(), Some("localhost"));
        let s = settings(&[("PADDOCK_PUBLIC_URL", "https://10.0.0.5")]).expect("parses");
        assert_eq!(s.passkeys_rp_id(), None);
        let s = settings(&[("PADDOCK_PUBLIC_URL", "https://club.example.org")]).expect("parses");
        assert_eq!(s.passkeys_rp_id().as_deref(), Some("club.example.org"));
        assert!(settings(&[("PADDOCK_PUBLIC_URL", "nonsense")]).is_err());
    }

    #[test]
    fn non_loopback_binds_get_secure_cookies() {
        let s = settings(&[("PADDOCK_BIND", "0.0.0.0:8080")]).expect("parses");
        assert!(s.secure_cookies());
        assert!(!s.hsts(), "no HSTS without an https public URL");
    }

    #[test]
    fn an_https_public_url_turns_on_secure_cookies_and_hsts_behind_a_loopback_bind() {
        let s = settings(&[
            ("PADDOCK_BIND", "127.0.0.1:8080"),
            ("PADDOCK_PUBLIC_URL", "https://paddock.example.org"),
        ])
        .expect("parses");
        assert!(s.secure_cookies() && s.hsts());
        let s = settings(&[
            ("PADDOCK_BIND", "0.0.0.0:8080"),
            ("PADDOCK_PUBLIC_URL", "http://paddock.lan:8080"),
        ])
        .expect("parses");
        assert!(!s.secure_cookies() && !s.hsts(), "declared plain HTTP");
    }

    #[test]
    fn the_public_url_names_the_only_host_and_origin() {
        let url = PublicUrl::parse("https://paddock.example.org").expect("parses");
        assert!(url.is_host("paddock.example.org"));
        assert!(url.is_host("Paddock.Example.org:443"));
        assert!(!url.is_host("paddock.example.org:8443"));
        assert!(!url.is_host("evil.example"));
        assert!(!url.is_host("paddock.example.org/x"));
        assert!(!url.is_host(""));
        assert!(url.is_origin("https://paddock.example.org"));
        assert!(url.is_origin("https://paddock.example.org:443"));
        assert!(
            !url.is_origin("http://paddock.example.org"),
            "scheme counts"
        );
        assert!(!url.is_origin("https://paddock.example.org.evil.example"));
        assert!(!url.is_origin("null"));
        assert_eq!(url.origin(), "https://paddock.example.org");
        let local = PublicUrl::parse("https://localhost:8443/").expect("parses");
        assert!(local.is_host("localhost:8443") && !local.is_host("localhost"));
        assert_eq!(local.origin(), "https://localhost:8443");
        let v6 = PublicUrl::parse("http://[::1]:8080").expect("parses");
        assert!(v6.is_host("[::1]:8080"));
    }

    #[test]
    fn trusted_proxies_default_to_none_and_are_validated() {
        let s = settings(&[]).expect("defaults");
        assert!(s.trusted_proxies.is_empty());
        let s = settings(&[("PADDOCK_TRUSTED_PROXIES", "127.0.0.1/32, fd00::/8")]).expect("parses");
        assert!(s.trusted_proxies.contains("127.0.0.1".parse().expect("ip")));
        assert!(s.trusted_proxies.contains("fd12::1".parse().expect("ip")));
        assert!(!s.trusted_proxies.contains("10.0.0.1".parse().expect("ip")));
        for bad in ["10.0.0.1/8", "10.0.0.0/40", "proxy.lan", "10.0.0.0/8;"] {
            let err = settings(&[("PADDOCK_TRUSTED_PROXIES", bad)]).expect_err(bad);
            assert!(
                err.to_string().contains("PADDOCK_TRUSTED_PROXIES"),
                "{bad}: {err}"
            );
        }
    }
}
