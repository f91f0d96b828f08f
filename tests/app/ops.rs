//! Running it for real, on a `paddock serve` process: Prometheus metrics on
//! their own address, JSON logs, and retention started by `serve` itself.

use std::{
    collections::BTreeMap,
    process::Command,
    time::{Duration, Instant},
};

use paddock::{
    db,
    seal::{KeyId, Keyring},
};
use reqwest::StatusCode;
use secrecy::ExposeSecret;

use crate::{
    credentials::{KEY, SECRET, enroll},
    helpers::{PASSWORD, Visitor, fresh_database, url},
    process::{Serve, TempDir, address_in, paddock},
};

/// `paddock serve` on a fresh database of the test cluster.
async fn serve_on_test_cluster(dir: &TempDir, extra: &[(&str, &str)]) -> (Serve, String) {
    let database = fresh_database().await;
    let entry = Keyring::generate_entry(&KeyId::parse("kops").expect("id"));
    let mut cmd: Command = paddock(dir.path());
    cmd.env("DATABASE_URL", url(db::APP_ROLE, &database))
        .env("DATABASE_ADMIN_URL", url(db::OWNER_ROLE, &database))
        .env("PADDOCK_SEAL_KEYS", entry.expose_secret());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    (Serve::start(cmd), database)
}

/// One scraped series: its name and labels.
pub type Series = (String, BTreeMap<String, String>);

/// Parses Prometheus/OpenMetrics text into series and values.
pub fn parse(text: &str) -> Vec<(Series, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let labels = body
                        .split("\",")
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").expect("k=\"v\"");
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), BTreeMap::new()),
            };
            ((name, labels), value.parse().expect("a number"))
        })
        .collect()
}

/// The value of `name` with exactly these labels, or 0.
pub fn value(scrape: &[(Series, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    scrape
        .iter()
        .find(|((n, l), _)| n == name && *l == want)
        .map_or(0.0, |(_, v)| *v)
}

/// The id in the first `<prefix><id><suffix>` of `html`.
fn id_between(html: &str, prefix: &str, suffix: &str) -> String {
    let end = html.find(suffix).expect(suffix);
    let start = html[..end].rfind(prefix).expect(prefix) + prefix.len();
    html[start..end].to_owned()
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_sign_ins_alpaca_calls_and_seals() {
    let dir = TempDir::new("metrics");
    let (server, _) = serve_on_test_cluster(&dir, &[("PADDOCK_METRICS_BIND", "127.0.0.1:0")]).await;
    let line = server
        .wait_for_log("metrics are served on", Duration::from_secs(5))
        .await;
    let metrics_url = address_in(&line).expect("the metrics address");
    let metrics_base = metrics_url.trim_end_matches("/metrics").to_owned();
    assert_ne!(metrics_base, server.base, "a separate listener");

    let ada = Visitor::new(&server.base);
    assert_eq!(
        ada.sign_up("ada@example.com", "Club", "").await.status,
        StatusCode::SEE_OTHER
    );
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    let credentials = ada.get("/credentials").await;
    let id = id_between(&credentials.body, "/credentials/", "/rotate");
    let account = ada.get(&format!("/accounts/{id}")).await;
    assert_eq!(account.status, StatusCode::OK);
    let placed = ada
        .post(
            &format!("/accounts/{id}/orders"),
            &[
                ("symbol", "AAPL"),
                ("side", "buy"),
                ("qty", "1"),
                ("order_type", "limit"),
                ("limit_price", "1.00"),
                ("time_in_force", "gtc"),
                ("order_token", &crate::helpers::fresh_token()),
            ],
        )
        .await;
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
    let account = ada.get(&format!("/accounts/{id}")).await;
    let order_id = id_between(&account.body, &format!("/accounts/{id}/orders/"), "/cancel");
    let cancelled = ada
        .post(&format!("/accounts/{id}/orders/{order_id}/cancel"), &[])
        .await;
    assert_eq!(
        cancelled.status,
        StatusCode::SEE_OTHER,
        "{}",
        cancelled.body
    );
    assert_eq!(ada.get("/no/such/page").await.status, StatusCode::NOT_FOUND);
    assert_eq!(ada.post("/logout", &[]).await.status, StatusCode::SEE_OTHER);
    let wrong = ada
        .sign_in("ada@example.com", "not the password at all")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);

    let on_app_port = reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("app port");
    assert_eq!(
        on_app_port.status(),
        StatusCode::NOT_FOUND,
        "not on the app's port"
    );
    let response = reqwest::get(&metrics_url).await.expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.expect("text");
    let scrape = parse(&text);
    let account_route = [("route", "/accounts/{id}"), ("status", "200")];
    assert_eq!(
        value(&scrape, "paddock_http_requests_total", &account_route),
        2.0,
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "paddock_http_request_duration_seconds_count",
            &[("route", "/accounts/{id}")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &scrape,
            "paddock_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        2.0,
        "/no/such/page, and /metrics asked of the app's port"
    );
    assert_eq!(
        value(
            &scrape,
            "paddock_http_requests_total",
            &[
                ("route", "/accounts/{id}/orders/{order_id}/cancel"),
                ("status", "303")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(&scrape, "paddock_sign_ins_total", &[("outcome", "failure")]),
        1.0
    );
    assert_eq!(
        value(&scrape, "paddock_sign_ins_total", &[("outcome", "success")]),
        1.0
    );
    assert_eq!(
        value(&scrape, "paddock_sign_ins_total", &[("outcome", "locked")]),
        0.0
    );
    let cancel = [("endpoint", "DELETE /v2/orders/{id}"), ("outcome", "ok")];
    assert_eq!(
        value(&scrape, "paddock_alpaca_requests_total", &cancel),
        1.0,
        "{text}"
    );
    let place = [("endpoint", "POST /v2/orders"), ("outcome", "ok")];
    assert_eq!(value(&scrape, "paddock_alpaca_requests_total", &place), 1.0);
    let accounts = value(
        &scrape,
        "paddock_alpaca_requests_total",
        &[("endpoint", "GET /v2/account"), ("outcome", "ok")],
    );
    assert!(
        accounts >= 3.0,
        "enrollment and two account pages: {accounts}"
    );
    assert_eq!(
        value(
            &scrape,
            "paddock_alpaca_request_duration_seconds_count",
            &[("endpoint", "GET /v2/account")]
        ),
        accounts
    );
    assert_eq!(
        value(&scrape, "paddock_seal_operations_total", &[("op", "seal")]),
        2.0,
        "key id and secret"
    );
    assert!(
        value(
            &scrape,
            "paddock_seal_operations_total",
            &[("op", "unseal")]
        ) >= 2.0
    );
    let idle = value(&scrape, "paddock_db_pool_connections", &[("state", "idle")]);
    let in_use = value(
        &scrape,
        "paddock_db_pool_connections",
        &[("state", "in_use")],
    );
    assert!(idle + in_use >= 1.0, "the pool has connections: {text}");
    assert!(
        !text.contains(&id) && !text.contains(&order_id),
        "no raw ids in labels"
    );

    let (ok, log) = server.stop();
    assert!(ok, "{log}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_and_serve_prunes_old_key_uses() {
    let dir = TempDir::new("json");
    let database = fresh_database().await;
    let admin = sqlx::PgPool::connect(&url(db::OWNER_ROLE, &database))
        .await
        .expect("admin");
    // An organization with one member and a key use from long ago.
    sqlx::query(
        "with o as (insert into organizations (name) values ('Old') returning id),
              m as (insert into members (organization_id, email, password_hash, role)
                    select id, 'old@example.com', 'x', 'owner' from o returning id, organization_id)
         insert into security_events (organization_id, member_id, kind, detail, created_at)
         select organization_id, id, k, 'long ago', now() - interval '30 days' from m,
                unnest(array['credential_used', 'sign_in']) as k",
    )
    .execute(&admin)
    .await
    .expect("seeding");
    let entry = Keyring::generate_entry(&KeyId::parse("kjson").expect("id"));
    let mut cmd = paddock(dir.path());
    cmd.env("DATABASE_URL", url(db::APP_ROLE, &database))
        .env("DATABASE_ADMIN_URL", url(db::OWNER_ROLE, &database))
        .env("PADDOCK_SEAL_KEYS", entry.expose_secret())
        .env("PADDOCK_LOG_FORMAT", "json")
        .env("PADDOCK_USE_EVENTS_RETENTION_DAYS", "7");
    let server = Serve::start(cmd);

    let deadline = Instant::now() + Duration::from_secs(20);
    let kinds = || async {
        sqlx::query_scalar::<_, String>("select kind from security_events order by kind")
            .fetch_all(&admin)
            .await
            .expect("kinds")
    };
    while kinds().await != ["sign_in"] {
        assert!(Instant::now() < deadline, "the old key use was not pruned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let visitor = Visitor::new(&server.base);
    assert_eq!(visitor.get("/login").await.status, StatusCode::OK);
    let (ok, log) = server.stop();
    assert!(ok, "{log}");

    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 4, "{log}");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object["level"].is_string(), "{line}");
        assert!(object["message"].is_string(), "{line}");
    }
    let pruned = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|o| o["message"] == "pruned old key-use events")
        .expect("a retention line");
    assert_eq!(pruned["pruned"], 1);
    assert_eq!(pruned["days"], 7);
    admin.close().await;
}
