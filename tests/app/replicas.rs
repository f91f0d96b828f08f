//! Two `paddock serve` processes against ONE PostgreSQL (the test cluster, as
//! external database URLs) behind a real load balancer: Debian's haproxy
//! running `deploy/haproxy.cfg` (see `haproxy.rs`), TLS terminated there.
//! Sign-in, sessions, CSRF tokens and throttling work across the replicas, the
//! activity log shows the client behind the proxy, cookies are `Secure`, a key
//! rewrap runs while both serve, and when one is killed the other serves on.

use std::{
    collections::HashSet,
    path::Path,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
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

use crate::{
    credentials::{KEY, SECRET},
    haproxy::{Proxy, certificates, proxy_port, require},
    helpers::{Options, PASSWORD, Page, TestApp, Visitor, url, wait_until},
    ops::{parse, value},
    portfolio::seed_credential,
    process::{Serve, TempDir, address_in, paddock},
    trading::order_fields,
};

const WRONG: &str = "a wrong password guess";

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

fn entry(id: &str) -> SecretString {
    Keyring::generate_entry(&KeyId::parse(id).expect("id"))
}

fn replica_of(page: &Page) -> String {
    page.header("x-replica").to_owned()
}

/// Both replicas, the proxy in front, and what the phases share.
struct Deployment {
    dir: TempDir,
    ca: reqwest::Certificate,
    proxy: Proxy,
    replicas: Vec<Serve>,
    database: String,
    env: Vec<(&'static str, String)>,
    /// Members whose 12 credentials were sealed under the old key `k1`.
    members: Vec<String>,
    _seeding: TestApp,
    _simulator: Simulator,
}

/// Seeds three members' credentials under `k1` (as a server that had only
/// `k1`), starts both replicas at once with `k2` first (`k1` still opens) and
/// one simulator, and haproxy in front; returns when haproxy sees both up.
async fn deploy() -> Deployment {
    let haproxy = require("haproxy", "haproxy");
    let openssl = require("openssl", "openssl");
    let dir = TempDir::new("replicas");
    let ca = certificates(&openssl, dir.path());

    let (k1, k2) = (entry("k1"), entry("k2"));
    let old = Keyring::parse(&k1).expect("keyring");
    let seeding = TestApp::spawn_with_keyring(Options::default(), Arc::new(old)).await;
    let members: Vec<String> = (0..3).map(|m| format!("member{m}@example.com")).collect();
    for (m, email) in members.iter().enumerate() {
        seeding.owner(email, &format!("Club {m}")).await;
        for i in 0..4 {
            let key = format!("PKREPL{m:02}{i:02}ACCOUNT0001");
            let label = format!("Account {i}");
            seed_credential(&seeding, email, &label, &key, Environment::Paper).await;
        }
    }

    let (sim_addr, simulator, _) = sim::spawn(([127, 0, 0, 1], 0).into(), SimOptions::default())
        .await
        .expect("simulator");
    let port = proxy_port();
    let env = vec![
        (
            "PADDOCK_SEAL_KEYS",
            format!("{},{}", k2.expose_secret(), k1.expose_secret()),
        ),
        ("PADDOCK_PUBLIC_URL", format!("https://localhost:{port}")),
        ("ALPACA_PAPER_URL", Simulator::paper_url(sim_addr)),
        ("ALPACA_LIVE_URL", Simulator::live_url(sim_addr)),
    ];
    let database = seeding.database.clone();
    let starting: Vec<_> = ["r1", "r2"]
        .into_iter()
        .map(|name| {
            let cmd = replica(dir.path(), name, &database, &env);
            std::thread::spawn(move || Serve::start_with(cmd, &["serve"]))
        })
        .collect();
    let replicas: Vec<Serve> = starting
        .into_iter()
        .map(|t| t.join().expect("a replica started"))
        .collect();
    let addresses = [0, 1].map(|i| replicas[i].base.trim_start_matches("http://").to_owned());
    let proxy = Proxy::start(&haproxy, dir.path(), port, [&addresses[0], &addresses[1]]);
    proxy.wait_for("paddock1", "UP").await;
    proxy.wait_for("paddock2", "UP").await;
    Deployment {
        dir,
        ca,
        proxy,
        replicas,
        database,
        env,
        members,
        _seeding: seeding,
        _simulator: simulator,
    }
}

impl Deployment {
    /// A browser at `client` (as X-Forwarded-For), or at loopback.
    fn visitor(&self, client: Option<&str>) -> Visitor {
        self.proxy.visitor(&self.ca, client)
    }

    /// `paddock` with `args`, configured like the replicas.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = replica(self.dir.path(), args[0], &self.database, &self.env);
        cmd.args(args);
        cmd
    }
}

#[tokio::test]
async fn two_replicas_behind_haproxy_share_sign_in_sessions_throttling_and_a_rewrap_and_survive_losing_one()
 {
    let mut d = deploy().await;
    let ada = sign_up_gets_secure_cookies_and_hsts(&d).await;
    requests_alternate_and_sessions_and_forms_work_on_both(&d, &ada).await;
    the_activity_log_shows_the_client(&d, &ada).await;
    throttling_counts_across_replicas(&d).await;
    a_rewrap_runs_while_both_serve(&d).await;
    the_other_replica_serves_on_after_one_is_killed(&mut d, &ada).await;
    let (stopped, log) = d.replicas.pop().expect("r2").stop();
    assert!(stopped, "r2 shut down gracefully:\n{log}");
}

async fn sign_up_gets_secure_cookies_and_hsts(d: &Deployment) -> Visitor {
    let ada = d.visitor(Some("198.51.100.7"));
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
    ada
}

/// haproxy names the replica that answered, and each replica's own metrics
/// count exactly the pages it served; a form from one is accepted by the other.
async fn requests_alternate_and_sessions_and_forms_work_on_both(d: &Deployment, ada: &Visitor) {
    let before = [
        portfolio_pages(&d.replicas[0]).await,
        portfolio_pages(&d.replicas[1]).await,
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
        let pages = portfolio_pages(&d.replicas[i]).await - before[i];
        assert_eq!(pages, count, "{name}");
    }

    let form = ada.get("/credentials/new").await;
    let fields = [
        ("label", "Main"),
        ("environment", "paper"),
        ("api_key_id", KEY),
        ("secret_key", SECRET),
    ];
    let page = ada.post("/credentials", &fields).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_ne!(
        replica_of(&form),
        replica_of(&page),
        "token made on one, checked on the other"
    );

    // Order idempotency across replicas: one order form (one token) sent twice,
    // once to each replica, is one order at Alpaca.
    let id: String = sqlx::query_scalar("select id::text from credentials where label = 'Main'")
        .fetch_one(&d._seeding.admin)
        .await
        .expect("credential");
    let account = ada.get(&format!("/accounts/{id}")).await;
    let token = crate::helpers::hidden_field(&account.body, "order_token").expect("order token");
    let orders_before = d._simulator.account(KEY).expect("account").orders.len();
    let csrf = ada.csrf().await;
    let mut fields = order_fields(&[("qty", "1")]);
    fields.push(("order_token", &token));
    fields.push(("csrf_token", &csrf));
    let path = format!("/accounts/{id}/orders");
    // Back to back, with nothing in between: haproxy sends them to different replicas.
    let first = ada.post_raw(&path, &fields).await;
    let second = ada.post_raw(&path, &fields).await;
    for page in [&first, &second] {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    }
    assert_ne!(
        replica_of(&first),
        replica_of(&second),
        "one form, both replicas"
    );
    assert_eq!(
        d._simulator.account(KEY).expect("account").orders.len(),
        orders_before + 1,
        "one order"
    );
    assert!(
        ada.get(&format!("/accounts/{id}"))
            .await
            .status_message()
            .contains("sent more than once"),
        "the second submission shows the first order"
    );
}

/// The client the proxy was told about, or the loopback peer haproxy itself
/// saw and forwarded.
async fn the_activity_log_shows_the_client(d: &Deployment, ada: &Visitor) {
    assert!(ada.get("/activity").await.body.contains("198.51.100.7"));
    let local = d.visitor(None);
    let page = local.sign_up("cy@example.com", "Cy's club", "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(local.get("/activity").await.body.contains("127.0.0.1"));
}

/// The reproduction, through the proxy: 20 failures from one client
/// lock that client, on both replicas, and not another organization's owner.
async fn throttling_counts_across_replicas(d: &Deployment) {
    let bob = d.visitor(Some("198.51.100.20"));
    let page = bob.sign_up("bob@example.com", "Other club", "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let mallory = d.visitor(Some("203.0.113.66"));
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
    let bob_at_work = d.visitor(Some("198.51.100.21"));
    let page = bob_at_work.sign_in("bob@example.com", PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "another client is not locked out"
    );

    for i in 0..5 {
        let stranger = d.visitor(Some(&format!("192.0.2.{}", 50 + i)));
        let page = stranger.sign_in("cy@example.com", WRONG).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let page = d
        .visitor(Some("192.0.2.99"))
        .sign_in("cy@example.com", PASSWORD)
        .await;
    assert_eq!(
        page.status,
        StatusCode::TOO_MANY_REQUESTS,
        "per-account limit"
    );
}

/// `paddock keys rewrap` while both replicas serve the members' pages, every
/// one of them 200 with every account's keys opening.
async fn a_rewrap_runs_while_both_serve(d: &Deployment) {
    let mut browsers = Vec::new();
    for (m, email) in d.members.iter().enumerate() {
        let v = d.visitor(Some(&format!("192.0.2.{}", 10 + m)));
        assert_eq!(
            v.sign_in(email, PASSWORD).await.status,
            StatusCode::SEE_OTHER
        );
        browsers.push(v);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(AtomicUsize::new(0));
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
    let mut rewrap = d.command(&["keys", "rewrap", "--batch-size", "1", "--pause-ms", "30"]);
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
    let out = d
        .command(&["keys", "status"])
        .output()
        .expect("keys status");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("k2") && l.contains("13")),
        "the 12 and Ada's: {stdout}"
    );
    assert!(!stdout.lines().any(|l| l.starts_with("k1")), "{stdout}");
}

/// One attempt at a page: the replica that served it, or what went wrong.
type Attempt = (Instant, Result<String, String>);

/// `kill -9` of one replica mid-traffic: requests may be retried (at most 3
/// tries) until haproxy has noticed; after that, none fails.
async fn the_other_replica_serves_on_after_one_is_killed(d: &mut Deployment, ada: &Visitor) {
    let stop = Arc::new(AtomicBool::new(false));
    let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let traffic = {
        let (stop, attempts) = (stop.clone(), attempts.clone());
        let (http, url) = (ada.http.clone(), format!("{}/portfolio", ada.base));
        tokio::spawn(async move {
            let mut gave_up = 0;
            while !stop.load(Ordering::SeqCst) {
                for tries in 1..=3 {
                    let started = Instant::now();
                    let outcome = match http.get(&url).send().await {
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
    d.replicas[0].kill();
    d.proxy.wait_for("paddock1", "DOWN").await;
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
}
