//! The test harness: ONE private PostgreSQL cluster per test binary (started with
//! the server's own provisioning code), a migrated template database, and per test
//! a fresh database, the app on 127.0.0.1:0 running as the app role, and the Alpaca
//! simulator on another loopback port.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{ChildStdin, Command, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use paddock::{
    alpaca::{
        self, ClientConfig,
        sim::{self, SimOptions, Simulator},
    },
    config::{PublicUrl, SignupMode},
    db::{
        self,
        embedded::{self, Cluster, Durability},
    },
    net::TrustedProxies,
    seal::{KeyId, Keyring},
    server::{self, Limits},
    state::{AppState, WebSettings},
    token::Token,
    web,
};
use reqwest::{StatusCode, header::HeaderMap, redirect::Policy};
use sqlx::{PgPool, postgres::PgPoolOptions};

/// A password strong enough for the sign-up rules.
pub const PASSWORD: &str = "quiet violet harbor engine";
const TEMPLATE: &str = "paddock_template";

struct SharedCluster {
    dir: PathBuf,
    _cluster: Mutex<Cluster>,
    _guard: Mutex<ChildStdin>,
}

static SHARED: OnceLock<SharedCluster> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

fn shared() -> &'static SharedCluster {
    SHARED.get_or_init(|| {
        std::thread::spawn(start_shared_cluster)
            .join()
            .expect("starting the test cluster panicked")
    })
}

fn start_shared_cluster() -> SharedCluster {
    let dir = std::env::temp_dir().join(format!("paddock-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the test cluster dir");
    let cluster = Cluster::start(&dir, Durability::Throwaway)
        .expect("starting the test PostgreSQL cluster (is the `postgresql` package installed?)");
    let pid = cluster
        .server_pid()
        .expect("the harness started the server");
    // Statics are never dropped: a guardian process stops the cluster and removes
    // its directory when this process exits and the pipe closes.
    let mut guardian = {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat >/dev/null; kill -INT {pid} 2>/dev/null; sleep 5; kill -KILL {pid} 2>/dev/null; rm -rf '{}'",
                dir.display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawning the clean-up guardian")
    };
    let guard = guardian.stdin.take().expect("guardian stdin");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let superuser = pool(&cluster.url(embedded::SUPERUSER, "postgres"), 1).await;
        db::ensure_roles(&superuser).await.expect("roles");
        db::ensure_database(&superuser, TEMPLATE, None)
            .await
            .expect("template db");
        let admin = pool(&cluster.url(db::OWNER_ROLE, TEMPLATE), 1).await;
        db::migrate(&admin, db::APP_ROLE)
            .await
            .expect("migrating the template");
        admin.close().await;
        superuser.close().await;
    });
    SharedCluster {
        dir,
        _cluster: Mutex::new(cluster),
        _guard: Mutex::new(guard),
    }
}

async fn pool(url: &str, max: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test cluster: {e}"))
}

/// The URL of `database` on the shared cluster for `user`.
pub fn url(user: &str, database: &str) -> String {
    embedded::socket_url(&shared().dir.join("pg"), user, database)
}

/// A fresh database cloned from the migrated template; returns its name.
pub async fn fresh_database() -> String {
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let superuser = pool(&url(embedded::SUPERUSER, "postgres"), 1).await;
    db::ensure_database(&superuser, &name, Some(TEMPLATE))
        .await
        .expect("creating a test database");
    superuser.close().await;
    name
}

/// Knobs for one test app.
#[derive(Clone)]
pub struct Options {
    /// Reuse this database instead of a fresh one.
    pub database: Option<String>,
    pub signup: SignupMode,
    pub sim_latency: Duration,
    pub request_timeout: Duration,
    /// Connections in the app role's pool.
    pub pool_size: u32,
    /// Slow-client limits of the serving function.
    pub limits: Limits,
    /// `PADDOCK_PUBLIC_URL`.
    pub public_url: Option<&'static str>,
    /// `PADDOCK_TRUSTED_PROXIES`.
    pub trusted_proxies: &'static str,
    /// Reuse of account reads; off unless a test is about it, so every view
    /// calls the simulator.
    pub alpaca_cache: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            database: None,
            signup: SignupMode::Open,
            sim_latency: Duration::ZERO,
            request_timeout: Duration::from_secs(2),
            pool_size: 30,
            limits: Limits::default(),
            public_url: None,
            trusted_proxies: "",
            alpaca_cache: Duration::ZERO,
        }
    }
}

/// One running app with its own database and simulator.
pub struct TestApp {
    pub addr: SocketAddr,
    pub database: String,
    /// Runtime (app role) pool: row-level security applies.
    pub pool: PgPool,
    /// Owner pool, for inspecting what is really stored.
    pub admin: PgPool,
    pub sim: Simulator,
    pub keyring: Arc<Keyring>,
}

impl TestApp {
    /// Starts an app with default options.
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    /// Starts an app with `options`.
    pub async fn spawn_with(options: Options) -> Self {
        let keyring = Keyring::parse(&Keyring::generate_entry(
            &KeyId::parse("k1").expect("key id"),
        ))
        .expect("keyring");
        Self::spawn_with_keyring(options, Arc::new(keyring)).await
    }

    /// Starts an app with a given keyring.
    pub async fn spawn_with_keyring(options: Options, keyring: Arc<Keyring>) -> Self {
        let database = match &options.database {
            Some(name) => name.clone(),
            None => fresh_database().await,
        };
        let app_pool = pool(&url(db::APP_ROLE, &database), options.pool_size).await;
        let admin = pool(&url(db::OWNER_ROLE, &database), 4).await;
        let (sim_addr, simulator, _) = sim::spawn(
            "127.0.0.1:0".parse().expect("addr"),
            SimOptions {
                latency: options.sim_latency,
            },
        )
        .await
        .expect("starting the simulator");
        let alpaca = ClientConfig {
            paper_url: Simulator::paper_url(sim_addr),
            live_url: Simulator::live_url(sim_addr),
            connect_timeout: Duration::from_secs(1),
            request_timeout: options.request_timeout,
        };
        let public_url = options
            .public_url
            .map(|u| PublicUrl::parse(u).expect("a public URL"));
        let state = AppState {
            pool: app_pool.clone(),
            alpaca: web::tenant::AlpacaGate::new(
                alpaca::Client::new(&alpaca).expect("client"),
                options.alpaca_cache,
            ),
            sealer: keyring.clone(),
            hashing: AppState::hashing_slots(),
            verifications: Default::default(),
            attestor: paddock::attest::Attestor::load(&admin)
                .await
                .expect("attestation key"),
            settings: Arc::new(WebSettings {
                signup: options.signup,
                secure_cookies: public_url.as_ref().is_some_and(|u| u.https),
                hsts: public_url.as_ref().is_some_and(|u| u.https),
                public_url,
                trusted_proxies: TrustedProxies::parse(options.trusted_proxies)
                    .expect("trusted proxies"),
                alpaca_deadline: options.request_timeout + Duration::from_secs(1),
                passkeys_rp_id: Some("localhost".into()),
                passkeys: Some(
                    paddock::passkey::Passkeys::new("localhost", None).expect("relying party"),
                ),
            }),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding");
        let addr = listener.local_addr().expect("addr");
        let limits = options.limits;
        tokio::spawn(async move {
            server::serve(listener, web::router(state), limits, std::future::pending())
                .await
                .expect("serving");
        });
        Self {
            addr,
            database,
            pool: app_pool,
            admin,
            sim: simulator,
            keyring,
        }
    }

    /// A new session for `email`'s member, created as sign-in creates one (as the
    /// owner, straight into the private table); returns its secret.
    pub async fn session_for(&self, email: &str) -> Token {
        let token = Token::generate().expect("token");
        sqlx::query(
            "insert into paddock_private.sessions (token_hash, member_id, organization_id, state, idle_expires_at, absolute_expires_at)
             select sha256($1), id, organization_id, 'signed_in', now() + interval '30 minutes', now() + interval '12 hours'
             from members where email = $2",
        )
        .bind(token.expose_bytes())
        .bind(email)
        .execute(&self.admin)
        .await
        .expect("session");
        token
    }

    /// A transaction as the app role, opened exactly as a request of `email`'s
    /// member opens it: the session's secret is presented to PostgreSQL first.
    pub async fn tenant(&self, email: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let token = self.session_for(email).await;
        db::identity::begin_request(&self.pool, &token)
            .await
            .expect("begin")
            .expect("a live session")
            .0
    }

    /// Every place (schema.table.column) in the database where any of `needles`
    /// appears: text columns as text, bytea columns as bytes. Panics unless there
    /// are plenty of columns to search, so it cannot pass by searching nothing.
    pub async fn find_in_database(&self, needles: &[&[u8]]) -> Vec<String> {
        let columns: Vec<(String, String, String, String)> = sqlx::query_as(
            "select table_schema::text, table_name::text, column_name::text, data_type::text
             from information_schema.columns
             where table_schema in ('public', 'paddock_private')
               and data_type in ('text', 'bytea', 'json', 'jsonb', 'character varying')",
        )
        .fetch_all(&self.admin)
        .await
        .expect("columns");
        assert!(
            columns.len() > 15,
            "every text and bytea column is searched"
        );
        let mut found = Vec::new();
        for (schema, table, column, kind) in columns {
            for needle in needles {
                if kind != "bytea" && std::str::from_utf8(needle).is_err() {
                    continue; // raw bytes cannot sit in a text column as such
                }
                let probe = if kind == "bytea" {
                    format!(
                        "select count(*) from {schema}.{table} where position($1 in \"{column}\") > 0"
                    )
                } else {
                    format!(
                        "select count(*) from {schema}.{table} where position(convert_from($1, 'UTF8') in \"{column}\"::text) > 0"
                    )
                };
                let hits: i64 = sqlx::query_scalar(&probe)
                    .bind(*needle)
                    .fetch_one(&self.admin)
                    .await
                    .expect("probe");
                if hits > 0 {
                    found.push(format!("{schema}.{table}.{column}"));
                }
            }
        }
        found
    }

    /// An absolute URL on this app.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A new visitor with an empty cookie jar.
    pub fn visitor(&self) -> Visitor {
        Visitor::new(&format!("http://{}", self.addr))
    }

    /// A new visitor whose requests carry `X-Forwarded-For: client`.
    pub fn visitor_from(&self, client: &str) -> Visitor {
        Visitor::forwarded_for(&format!("http://{}", self.addr), client)
    }

    /// A visitor who has just created an organization named `org` and is signed in.
    pub async fn owner(&self, email: &str, org: &str) -> Visitor {
        let v = self.visitor();
        let page = v.sign_up(email, org, "").await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "sign-up failed: {}",
            page.body
        );
        v
    }

    /// A visitor who joined with `code` and is signed in.
    pub async fn member(&self, email: &str, code: &str) -> Visitor {
        let v = self.visitor();
        let page = v.sign_up(email, "", code).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "joining failed: {}",
            page.body
        );
        v
    }
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `bound`.
pub async fn wait_until<F, Fut>(bound: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !condition().await {
        assert!(start.elapsed() < bound, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// App-role sessions of `database` idling inside an open transaction (read as the
/// superuser: other roles cannot see a session's state in pg_stat_activity).
pub async fn idle_in_transaction(database: &str) -> i64 {
    let superuser = pool(&url(embedded::SUPERUSER, "postgres"), 1).await;
    let count = sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = $1 and usename = 'paddock_app' and state like 'idle in transaction%'",
    )
    .bind(database)
    .fetch_one(&superuser)
    .await
    .expect("pg_stat_activity");
    superuser.close().await;
    count
}

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The `Location` header of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The text of the first element with `role="alert"`, or "".
    pub fn alert(&self) -> String {
        element_text(&self.body, "role=\"alert\"")
    }

    /// The text of the first element with `role="status"`, or "".
    pub fn status_message(&self) -> String {
        element_text(&self.body, "role=\"status\"")
    }
}

/// Visible text (tags stripped) of the element whose start tag contains `marker`.
pub fn element_text(html: &str, marker: &str) -> String {
    let Some(at) = html.find(marker) else {
        return String::new();
    };
    let start = html[..at].rfind('<').unwrap_or(at);
    let tag: String = html[start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let close = format!("</{tag}>");
    let end = html[at..].find(&close).map_or(html.len(), |i| at + i);
    strip_tags(&html[start..end])
}

/// Removes tags and collapses whitespace.
pub fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of the hidden CSRF field in `html`.
pub fn csrf_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// A person with a browser-like cookie jar, driving the app over HTTP.
pub struct Visitor {
    pub base: String,
    pub http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    csrf: Mutex<Option<String>>,
}

impl Visitor {
    /// A visitor of the app at `base` (e.g. `http://127.0.0.1:1234`).
    pub fn new(base: &str) -> Self {
        Self::with(base, reqwest::Client::builder())
    }

    /// A visitor whose HTTP client starts from `builder` (default headers,
    /// trusted certificates); cookies and redirects are set up as for [`Visitor::new`].
    pub fn with(base: &str, builder: reqwest::ClientBuilder) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        Self {
            base: base.to_owned(),
            http: builder
                .cookie_provider(jar.clone())
                .redirect(Policy::none())
                .build()
                .expect("client"),
            jar,
            csrf: Mutex::new(None),
        }
    }

    /// A visitor whose requests say, as a proxy would, that they come from `client`.
    pub fn forwarded_for(base: &str, client: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", client.parse().expect("a header value"));
        Self::with(base, reqwest::Client::builder().default_headers(headers))
    }

    /// The same person (the same cookie jar: cookies ignore ports) visiting
    /// another app at `base`, e.g. a second replica on this machine.
    pub fn at(&self, base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .cookie_provider(self.jar.clone())
                .redirect(Policy::none())
                .build()
                .expect("client"),
            jar: self.jar.clone(),
            csrf: Mutex::new(None),
        }
    }

    /// The value of cookie `name` in this visitor's jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url: reqwest::Url = self.base.parse().expect("base url");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// Puts `name=value` into this visitor's jar, as a browser that had it would.
    pub fn add_cookie(&self, name: &str, value: &str) {
        let url: reqwest::Url = self.base.parse().expect("base url");
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }

    /// The secret of this visitor's session cookie.
    pub fn session_token(&self) -> Token {
        self.cookie("paddock_session")
            .and_then(|v| Token::parse(&v))
            .expect("a session cookie")
    }

    /// GET `path`, without following redirects.
    pub async fn get(&self, path: &str) -> Page {
        let page = self
            .read(self.http.get(format!("{}{path}", self.base)))
            .await;
        if let Some(token) = csrf_in(&page.body) {
            *self.csrf.lock().expect("lock") = Some(token);
        }
        page
    }

    /// The session's CSRF token, read from a page that has a form.
    pub async fn csrf(&self) -> String {
        if let Some(token) = self.csrf.lock().expect("lock").clone() {
            return token;
        }
        let page = self.get("/org").await;
        if let Some(token) = csrf_in(&page.body) {
            return token;
        }
        let page = self.get("/login").await;
        csrf_in(&page.body).expect("a CSRF token on /login")
    }

    /// POSTs a form with the session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf().await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        let page = self.post_raw(path, &form).await;
        if page.status.is_redirection() {
            // Sign-in and sign-out replace the token; read it afresh next time.
            *self.csrf.lock().expect("lock") = None;
        } else if let Some(token) = csrf_in(&page.body) {
            *self.csrf.lock().expect("lock") = Some(token);
        }
        page
    }

    /// POSTs exactly these fields (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.read(self.http.post(format!("{}{path}", self.base)).form(fields))
            .await
    }

    async fn read(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    /// Creates an invite on `/org` and returns the code shown once.
    pub async fn create_invite(&self) -> String {
        let page = self.post("/org/invites", &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let marker = "class=\"secret-once\">";
        let start = page.body.find(marker).expect("the invite code is shown") + marker.len();
        let end = page.body[start..].find('<').expect("code end") + start;
        page.body[start..end].to_owned()
    }

    /// Signs up with the strong test password, creating `organization` or joining
    /// with `invite` (give one, leave the other empty); returns the response.
    pub async fn sign_up(&self, email: &str, organization: &str, invite: &str) -> Page {
        self.post(
            "/signup",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("organization_name", organization),
                ("invite_code", invite),
            ],
        )
        .await
    }

    /// Signs in; returns the response to the POST.
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.post("/login", &[("email", email), ("password", password)])
            .await
    }
}

/// A fresh single-use order-form token, as a rendered order form carries.
pub fn fresh_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The value of the hidden field `name` in `html`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}
