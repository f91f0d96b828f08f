//! Two `paddock serve` processes against ONE PostgreSQL behind a real load
//! balancer: Debian's haproxy, running `deploy/haproxy.cfg` itself (with local
//! addresses), terminating TLS with a certificate made here by a CA made here.
//! Sign-in, sessions, CSRF tokens and throttling work across the replicas, the
//! activity log shows the client behind the proxy, cookies are `Secure`, a key
//! rewrap runs while both serve, and when one is killed the other serves on.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use paddock::{
    alpaca::{
        Environment,
        sim::{self, SimOptions, Simulator},
    },
    db,
    seal::{KeyId, Keyring},
};
use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    credentials::{KEY, SECRET},
    helpers::{Options, PASSWORD, Page, TestApp, Visitor, url, wait_until},
    ops::{parse, value},
    portfolio::seed_credential,
    process::{Serve, TempDir, address_in, paddock},
};

const PROXY_CONFIG: &str = include_str!("../../deploy/haproxy.cfg");
const WRONG: &str = "a wrong password guess";

/// The path of `program`, or a panic naming the Debian package to install.
fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the replica test needs `{program}`: install Debian's `{package}` package (`./dev.sh test` does)"
            )
        })
}

/// A CA, and a certificate for `localhost` it signed; writes the proxy's
/// certificate and key to `dir/paddock.pem` and returns the CA certificate.
fn certificates(openssl: &Path, dir: &Path) -> reqwest::Certificate {
    let run = |args: &[&str]| {
        let out = Command::new(openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    let ca = format!("req -x509 {new_key} -keyout ca.key -out ca.pem -days 2");
    let leaf = format!("req {new_key} -keyout leaf.key -out leaf.csr");
    let words = |line: &str, subject: &'static str| -> Vec<String> {
        line.split(' ')
            .map(str::to_owned)
            .chain(["-subj".to_owned(), subject.to_owned()])
            .collect()
    };
    for args in [
        words(&ca, "/CN=Paddock test CA"),
        words(&leaf, "/CN=localhost"),
    ] {
        run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
    let read = |name: &str| std::fs::read(dir.join(name)).expect(name);
    std::fs::write(
        dir.join("paddock.pem"),
        [read("leaf.pem"), read("leaf.key")].concat(),
    )
    .expect("paddock.pem");
    reqwest::Certificate::from_pem(&read("ca.pem")).expect("the CA certificate")
}

/// haproxy running the shipped configuration, on local addresses.
struct Proxy {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Proxy {
    fn start(haproxy: &Path, dir: &Path, port: u16, replicas: [&str; 2]) -> Self {
        let mut config = PROXY_CONFIG.to_owned();
        let dir_text = dir.display().to_string();
        for (from, to) in [
            (
                "log /dev/log local0",
                "log stderr format raw local0".to_owned(),
            ),
            ("/run/haproxy/admin.sock", format!("{dir_text}/admin.sock")),
            (
                "bind :443 ssl crt /etc/haproxy/certs/paddock.pem",
                format!("bind 127.0.0.1:{port} ssl crt {dir_text}/paddock.pem"),
            ),
            ("    bind :80\n", String::new()),
            ("inter 2s", "inter 100ms".to_owned()),
            ("10.0.0.11:8080", replicas[0].to_owned()),
            ("10.0.0.12:8080", replicas[1].to_owned()),
            // Names the replica that answered, for this test to see.
            (
                "    default_backend paddock",
                "    http-response set-header X-Replica %s\n    default_backend paddock".to_owned(),
            ),
        ] {
            assert!(
                config.contains(from),
                "deploy/haproxy.cfg no longer has {from:?}"
            );
            config = config.replacen(from, &to, 1);
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).expect("haproxy.cfg");
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy.log");
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting haproxy");
        Self {
            child,
            dir: dir.to_owned(),
            port,
        }
    }

    fn base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }

    /// `server`'s state (`UP`, `DOWN`, …) from haproxy's stats socket.
    async fn state(&self, server: &str) -> Option<String> {
        let mut socket = tokio::net::UnixStream::connect(self.dir.join("admin.sock"))
            .await
            .ok()?;
        socket.write_all(b"show stat\n").await.ok()?;
        let mut csv = String::new();
        socket.read_to_string(&mut csv).await.ok()?;
        let mut lines = csv.lines();
        let columns: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let status = columns.iter().position(|c| *c == "status")?;
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&"paddock") && f.get(1) == Some(&server))
            .and_then(|f| f.get(status).map(|s| (*s).to_owned()))
    }

    async fn wait_for(&self, server: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state(server).await.as_deref() != Some(state) {
            assert!(
                Instant::now() < deadline,
                "haproxy did not see {server} {state}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A person at `client` (sent as X-Forwarded-For, as if from another
    /// machine), or at the loopback address haproxy sees, trusting the test CA.
    fn visitor(&self, ca: &reqwest::Certificate, client: Option<&str>) -> Visitor {
        let mut headers = header::HeaderMap::new();
        if let Some(client) = client {
            headers.insert("x-forwarded-for", client.parse().expect("value"));
        }
        Visitor::with(
            &self.base(),
            reqwest::Client::builder()
                .tls_certs_only([ca.clone()])
                .resolve("localhost", ([127, 0, 0, 1], self.port).into())
                .default_headers(headers),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A replica of `paddock serve` in production mode on `database`.
fn replica(dir: &Path, name: &str, database: &str, env: &[(&str, String)]) -> Command {
    let data_dir = dir.join(name);
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let mut cmd = paddock(&data_dir);
    cmd.env("PADDOCK_ENV", "production")
        .env("DATABASE_URL", url(db::APP_ROLE, database))
        .env("DATABASE_ADMIN_URL", url(db::OWNER_ROLE, database))
        .env("PADDOCK_TRUSTED_PROXIES", "127.0.0.1/32")
        .env("PADDOCK_METRICS_BIND", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `GET /portfolio` answered 200 by a replica, per that replica's own metrics.
async fn portfolio_pages(replica: &Serve) -> f64 {
    let line = replica
        .wait_for_log("metrics are served on", Duration::from_secs(5))
        .await;
    let metrics = address_in(&line).expect("the metrics address");
    let text = reqwest::get(&metrics)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    value(
        &parse(&text),
        "paddock_http_requests_total",
        &[("route", "/portfolio"), ("status", "200")],
    )
}

/// A free port below Linux's ephemeral range (32768 and up), so that no other
/// test's `127.0.0.1:0` takes it between this check and haproxy binding it.
fn proxy_port() -> u16 {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    (start..32_000)
        .chain(20_000..start)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port for haproxy")
}

fn entry(id: &str) -> SecretString {
    Keyring::generate_entry(&KeyId::parse(id).expect("id"))
}

fn replica_of(page: &Page) -> String {
    page.header("x-replica").to_owned()
}

#[tokio::test]
async fn two_replicas_behind_haproxy_share_sign_in_sessions_throttling_and_a_rewrap_and_survive_losing_one()
 {
    let haproxy = require("haproxy", "haproxy");
    let openssl = require("openssl", "openssl");
    let dir = TempDir::new("replicas");
    let ca = certificates(&openssl, dir.path());

    // Three members' credentials sealed under k1 by a server that had only k1.
    let (k1, k2) = (entry("k1"), entry("k2"));
    let old = Keyring::parse(&k1).expect("keyring");
    let seeding = TestApp::spawn_with_keyring(Options::default(), Arc::new(old)).await;
    let members: Vec<String> = (0..3).map(|m| format!("member{m}@example.com")).collect();
    for (m, email) in members.iter().enumerate() {
        seeding.owner(email, &format!("Club {m}")).await;
        for i in 0..4 {
            let key = format!("PKREPL{m:02}{i:02}ACCOUNT0001");
            seed_credential(
                &seeding,
                email,
                &format!("Account {i}"),
                &key,
                Environment::Paper,
            )
            .await;
        }
    }

    // Both replicas start at once, k2 first (k1 still opens), one simulator.
    let (sim_addr, _simulator, _sim_task) =
        sim::spawn(([127, 0, 0, 1], 0).into(), SimOptions::default())
            .await
            .expect("simulator");
    let port = proxy_port();
    let keys = format!("{},{}", k2.expose_secret(), k1.expose_secret());
    let env = vec![
        ("PADDOCK_SEAL_KEYS", keys.clone()),
        ("PADDOCK_PUBLIC_URL", format!("https://localhost:{port}")),
        ("ALPACA_PAPER_URL", Simulator::paper_url(sim_addr)),
        ("ALPACA_LIVE_URL", Simulator::live_url(sim_addr)),
    ];
    let starting: Vec<_> = ["r1", "r2"]
        .into_iter()
        .map(|name| {
            let cmd = replica(dir.path(), name, &seeding.database, &env);
            std::thread::spawn(move || Serve::start_with(cmd, &["serve"]))
        })
        .collect();
    let mut replicas: Vec<Serve> = starting
        .into_iter()
        .map(|t| t.join().expect("a replica started"))
        .collect();
    let addresses = [0, 1].map(|i| replicas[i].base.trim_start_matches("http://").to_owned());
    let proxy = Proxy::start(&haproxy, dir.path(), port, [&addresses[0], &addresses[1]]);
    proxy.wait_for("paddock1", "UP").await;
    proxy.wait_for("paddock2", "UP").await;

    // Sign-up through the proxy: Secure cookies and HSTS.
    let ada = proxy.visitor(&ca, Some("198.51.100.7"));
    let page = ada.sign_up("ada@example.com", "Club", "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.header("strict-transport-security"), "max-age=31536000");
    let cookies: Vec<&str> = page
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("text"))
        .collect();
    for name in ["paddock_session=", "paddock_device="] {
        let cookie = cookies.iter().find(|c| c.starts_with(name)).expect(name);
        assert!(
            cookie.contains("; Secure") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
    }

    // Requests alternate: haproxy names the replica, and each replica's own
    // metrics count exactly the pages it served.
    let before = [
        portfolio_pages(&replicas[0]).await,
        portfolio_pages(&replicas[1]).await,
    ];
    let mut served = Vec::new();
    for _ in 0..6 {
        let page = ada.get("/portfolio").await;
        assert_eq!(page.status, StatusCode::OK, "the session works on both");
        served.push(replica_of(&page));
    }
    assert!(served.windows(2).all(|w| w[0] != w[1]), "{served:?}");
    for (i, name) in ["paddock1", "paddock2"].into_iter().enumerate() {
        let count = served.iter().filter(|s| *s == name).count() as f64;
        assert_eq!(count, 3.0, "{served:?}");
        assert_eq!(
            portfolio_pages(&replicas[i]).await - before[i],
            count,
            "{name}"
        );
    }

    // A form from one replica is accepted by the other.
    let form = ada.get("/credentials/new").await;
    let page = ada
        .post(
            "/credentials",
            &[
                ("label", "Main"),
                ("environment", "paper"),
                ("api_key_id", KEY),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_ne!(
        replica_of(&form),
        replica_of(&page),
        "token made on one, checked on the other"
    );

    // The activity log shows the client: the one the proxy was told about, or
    // the loopback peer haproxy itself saw and forwarded.
    assert!(ada.get("/activity").await.body.contains("198.51.100.7"));
    let local = proxy.visitor(&ca, None);
    assert_eq!(
        local
            .sign_up("cy@example.com", "Cy's club", "")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert!(local.get("/activity").await.body.contains("127.0.0.1"));

    // Throttling counts across replicas, per client address behind the proxy.
    let bob = proxy.visitor(&ca, Some("198.51.100.20"));
    assert_eq!(
        bob.sign_up("bob@example.com", "Other club", "")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let mallory = proxy.visitor(&ca, Some("203.0.113.66"));
    let mut answered = HashSet::new();
    for i in 0..20 {
        let page = mallory
            .sign_in(&format!("guess{i}@example.com"), WRONG)
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "guess {i}");
        answered.insert(replica_of(&page));
    }
    assert_eq!(answered.len(), 2, "both replicas counted guesses");
    for _ in 0..2 {
        let page = mallory.sign_in("guess20@example.com", WRONG).await;
        assert_eq!(
            page.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            replica_of(&page)
        );
    }
    let bob_at_work = proxy.visitor(&ca, Some("198.51.100.21"));
    let page = bob_at_work.sign_in("bob@example.com", PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "another client is not locked out"
    );
    for i in 0..5 {
        let stranger = proxy.visitor(&ca, Some(&format!("192.0.2.{}", 50 + i)));
        let page = stranger.sign_in("cy@example.com", WRONG).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let page = proxy
        .visitor(&ca, Some("192.0.2.99"))
        .sign_in("cy@example.com", PASSWORD)
        .await;
    assert_eq!(
        page.status,
        StatusCode::TOO_MANY_REQUESTS,
        "per-account limit"
    );

    // `paddock keys rewrap` while both replicas serve the members' pages.
    let mut browsers = Vec::new();
    for (m, email) in members.iter().enumerate() {
        let v = proxy.visitor(&ca, Some(&format!("192.0.2.{}", 10 + m)));
        assert_eq!(
            v.sign_in(email, PASSWORD).await.status,
            StatusCode::SEE_OTHER
        );
        browsers.push(v);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (stop, pages) = (stop.clone(), pages.clone());
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            while !stop.load(Ordering::SeqCst) {
                for v in &browsers {
                    let page = v.get("/portfolio").await;
                    assert_eq!(
                        page.status,
                        StatusCode::OK,
                        "a page failed during the rewrap"
                    );
                    assert!(page.alert().is_empty(), "{}", page.alert());
                    seen.insert(replica_of(&page));
                    pages.fetch_add(1, Ordering::SeqCst);
                }
            }
            seen
        })
    };
    wait_until(Duration::from_secs(20), "pages load", || async {
        pages.load(Ordering::SeqCst) >= 3
    })
    .await;
    let mut rewrap = replica(dir.path(), "rewrap", &seeding.database, &env);
    rewrap.args(["keys", "rewrap", "--batch-size", "1", "--pause-ms", "30"]);
    let at_start = pages.load(Ordering::SeqCst);
    let out = tokio::task::spawn_blocking(move || rewrap.output())
        .await
        .expect("join")
        .expect("running rewrap");
    let during = pages.load(Ordering::SeqCst) - at_start;
    stop.store(true, Ordering::SeqCst);
    let seen = load.await.expect("no page failed during the rewrap");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("12 re-sealed under `k2`"), "{stdout}");
    assert!(
        during >= 3,
        "pages were served during the rewrap ({during})"
    );
    assert_eq!(seen.len(), 2, "by both replicas");
    let mut status = replica(dir.path(), "status", &seeding.database, &env);
    status.args(["keys", "status"]);
    let out = status.output().expect("keys status");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("k2") && l.contains("13")),
        "{stdout}"
    );
    assert!(!stdout.lines().any(|l| l.starts_with("k1")), "{stdout}");

    // Kill one replica mid-traffic: once haproxy has noticed, nothing fails.
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(std::sync::Mutex::new(Vec::<(
        Instant,
        Result<String, String>,
    )>::new()));
    let traffic = {
        let (stop, attempts) = (stop.clone(), attempts.clone());
        let (http, base) = (ada.http.clone(), ada.base.clone());
        tokio::spawn(async move {
            let mut gave_up = 0;
            while !stop.load(Ordering::SeqCst) {
                let mut tries = 0;
                loop {
                    tries += 1;
                    let started = Instant::now();
                    let outcome = match http.get(format!("{base}/portfolio")).send().await {
                        Ok(r) if r.status() == StatusCode::OK => Ok(r
                            .headers()
                            .get("x-replica")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()),
                        Ok(r) => Err(r.status().to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    let ok = outcome.is_ok();
                    attempts.lock().expect("lock").push((started, outcome));
                    if ok {
                        break;
                    }
                    if tries == 3 {
                        gave_up += 1;
                        break;
                    }
                }
            }
            gave_up
        })
    };
    let since = |from: Option<Instant>| {
        let n = attempts
            .lock()
            .expect("lock")
            .iter()
            .filter(|(at, _)| from.is_none_or(|f| *at >= f))
            .count();
        async move { n }
    };
    wait_until(Duration::from_secs(20), "traffic flows", || {
        let n = since(None);
        async move { n.await >= 4 }
    })
    .await;
    let killed_at = Instant::now();
    replicas[0].kill();
    proxy.wait_for("paddock1", "DOWN").await;
    let noticed_at = Instant::now();
    wait_until(Duration::from_secs(30), "traffic after the switch", || {
        let n = since(Some(noticed_at));
        async move { n.await >= 20 }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let gave_up = traffic.await.expect("traffic");
    let attempts = attempts.lock().expect("lock").clone();
    let failed_in_switch = attempts
        .iter()
        .filter(|(at, o)| *at >= killed_at && *at < noticed_at && o.is_err())
        .count();
    eprintln!(
        "haproxy noticed the dead replica after {:?}; {failed_in_switch} request(s) failed meanwhile and were retried",
        noticed_at - killed_at
    );
    assert_eq!(
        gave_up, 0,
        "every request succeeded within 3 tries: {attempts:?}"
    );
    for (at, outcome) in attempts.iter().filter(|(at, _)| *at >= noticed_at) {
        assert_eq!(
            outcome.as_deref(),
            Ok("paddock2"),
            "{:?} after haproxy noticed",
            *at - noticed_at
        );
    }
    let (stopped, log) = replicas.pop().expect("r2").stop();
    assert!(stopped, "r2 shut down gracefully:\n{log}");
}
