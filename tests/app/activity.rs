//! `/activity`: 50 events a page, newest first, an **Older** link, a filter by
//! kind kept across pages; and retention of old key-use events.

use std::time::{Duration, Instant};

use paddock::retention::{self, Retention};
use reqwest::StatusCode;

use crate::helpers::{TestApp, Visitor, strip_tags};

/// Inserts an event for `email`'s member, `minutes_ago` old (as the owner).
async fn seed(app: &TestApp, email: &str, kind: &str, detail: &str, minutes_ago: i64) {
    sqlx::query(
        "insert into security_events (organization_id, member_id, kind, detail, ip, created_at)
         select organization_id, id, $2, $3, '192.0.2.1', now() - make_interval(mins => $4::int)
         from members where email = $1",
    )
    .bind(email)
    .bind(kind)
    .bind(detail)
    .bind(minutes_ago)
    .execute(&app.admin)
    .await
    .expect("seeding an event");
}

/// The cells of each row in the table's body.
fn rows(html: &str) -> Vec<Vec<String>> {
    let start = html.find("<tbody>").expect("a table body");
    let end = html[start..].find("</tbody>").expect("end of body") + start;
    html[start..end]
        .split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| strip_tags(&format!("<td{cell}")))
                .collect()
        })
        .collect()
}

/// The `href` of the link whose text is `text`, entities decoded.
fn link(html: &str, text: &str) -> Option<String> {
    let end = html.find(&format!(">{text}</a>"))?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    let href = &html[start..html[start..].find('"')? + start];
    Some(decode_entities(href))
}

/// `&amp;` and numeric character references (`&#38;`), as a browser reads them.
fn decode_entities(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail.find(';').expect("an entity ends with ;");
        let entity = &tail[1..end];
        let decoded = match entity.strip_prefix('#') {
            Some(code) => char::from_u32(code.parse().expect("decimal")).expect("char"),
            None if entity == "amp" => '&',
            None => panic!("unexpected entity &{entity};"),
        };
        out.push(decoded);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Ada with 129 events (2 from signing up, 45 + 10 tied + 74 seeded, alternating
/// kinds) and Bob, of another organization, with events of his own.
async fn seeded() -> (TestApp, Visitor) {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    app.owner("bob@example.com", "Other").await;
    let kind = |i: i64| {
        if i % 2 == 0 {
            "credential_used"
        } else {
            "sign_in"
        }
    };
    let events = (1..=45)
        .map(|i| (i, format!("seeded {i:03}"), i))
        .chain((0..10).map(|j| (j, format!("tie {j}"), 46)))
        .chain((47..=120).map(|i| (i, format!("seeded {i:03}"), i)));
    for (n, detail, minutes_ago) in events {
        seed(&app, "ada@example.com", kind(n), &detail, minutes_ago).await;
    }
    seed(&app, "bob@example.com", "sign_in", "bob's own", 1).await;
    (app, ada)
}

#[tokio::test]
async fn activity_shows_fifty_newest_first_and_older_pages_continue_without_gaps() {
    let (_app, ada) = seeded().await;
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/activity".to_owned();
    let mut pages = 0;
    loop {
        let page = ada.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.contains("<caption>Security events</caption>"));
        for header in ["When", "Event", "Detail", "IP"] {
            assert!(
                page.body
                    .contains(&format!("<th scope=\"col\">{header}</th>"))
            );
        }
        let rows = rows(&page.body);
        pages += 1;
        seen.extend(rows.iter().map(|r| r[2].clone()));
        match link(&page.body, "Older") {
            Some(older) => {
                assert_eq!(rows.len(), 50, "a full page before an Older link");
                path = older;
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 131, "every event once: {seen:?}");
    let mut expected: Vec<String> = vec![String::new(), "created the organization".into()];
    expected.extend((1..=45).map(|i| format!("seeded {i:03}")));
    expected.extend((0..10).rev().map(|j| format!("tie {j}")));
    expected.extend((47..=120).map(|i| format!("seeded {i:03}")));
    // The first two rows are from signing up (no detail), newest of all.
    assert_eq!(&seen[..2], &expected[..2]);
    assert_eq!(
        seen[2..],
        expected[2..],
        "newest first, ties by id, no repeats"
    );
    assert!(
        !seen.iter().any(|d| d.contains("bob")),
        "only Ada's own events"
    );
}

#[tokio::test]
async fn the_event_filter_shows_one_kind_and_is_kept_on_older_pages() {
    let (_app, ada) = seeded().await;
    let page = ada.get("/activity").await;
    assert!(page.body.contains("<label for=\"kind\">Event</label>"));
    assert!(page.body.contains("<option value=\"\">All events</option>"));
    assert!(page.body.contains(">Filter</button>"));

    let first = ada.get("/activity?kind=credential_used").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        first
            .body
            .contains("<option value=\"credential_used\" selected>")
    );
    let rows_first = rows(&first.body);
    assert_eq!(rows_first.len(), 50);
    assert!(
        rows_first.iter().all(|r| r[1] == "Credential used"),
        "{rows_first:?}"
    );
    let older = link(&first.body, "Older").expect("more key uses");
    assert!(older.contains("kind=credential_used"), "{older}");
    let second = ada.get(&older).await;
    let rows_second = rows(&second.body);
    assert!(rows_second.iter().all(|r| r[1] == "Credential used"));
    // 22 + 5 + 37 seeded key uses; the sign-up made none.
    assert_eq!(rows_first.len() + rows_second.len(), 64);
    assert!(link(&second.body, "Older").is_none());
    assert!(
        second
            .body
            .contains("<option value=\"credential_used\" selected>")
    );
}

#[tokio::test]
async fn activity_queries_that_are_not_ours_get_400_never_500() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    for query in [
        "kind=drop_table",
        "kind=%FF%FE",
        "before=yesterday",
        "before=99999999999999999999_1",
        "before=1_",
        "kind=sign_in&before=x",
    ] {
        let page = ada.get(&format!("/activity?{query}")).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            page.body
        );
        assert!(page.body.contains("No such list of events"), "{query}");
    }
    let empty = ada.get("/activity?before=0_0").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty.body.contains("No events before these."),
        "{}",
        empty.body
    );
    assert!(link(&empty.body, "Newest").is_some());
    let ignored = ada.get("/activity?utm_source=mail&kind=").await;
    assert_eq!(ignored.status, StatusCode::OK);
}

async fn count(app: &TestApp, filter: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "select count(*) from security_events where {filter}"
    ))
    .fetch_one(&app.admin)
    .await
    .expect("count")
}

#[tokio::test]
async fn retention_prunes_only_old_key_use_events_in_batches_and_stops_on_shutdown() {
    let app = TestApp::spawn().await;
    app.owner("ada@example.com", "Club").await;
    app.owner("bob@example.com", "Other").await;
    const DAY: i64 = 24 * 60;
    for i in 0..23 {
        seed(
            &app,
            "ada@example.com",
            "credential_used",
            "old use",
            401 * DAY + i,
        )
        .await;
        seed(
            &app,
            "bob@example.com",
            "credential_used",
            "old use",
            500 * DAY + i,
        )
        .await;
    }
    seed(&app, "ada@example.com", "sign_in", "old sign-in", 900 * DAY).await;
    seed(
        &app,
        "ada@example.com",
        "credential_deleted",
        "old delete",
        900 * DAY,
    )
    .await;
    seed(
        &app,
        "ada@example.com",
        "credential_used",
        "recent use",
        399 * DAY,
    )
    .await;
    let others = count(&app, "kind <> 'credential_used'").await;

    let denied = sqlx::query("delete from security_events")
        .execute(&app.pool)
        .await
        .expect_err("the app role cannot delete events");
    assert!(denied.to_string().contains("permission denied"), "{denied}");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(retention::run(
        app.admin.clone(),
        Retention {
            days: 400,
            every: Duration::from_secs(3600),
            batch: 5,
        },
        stopped,
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&app, "detail = 'old use'").await > 0 {
        assert!(Instant::now() < deadline, "old key uses were not pruned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&app, "detail = 'recent use'").await, 1);
    assert_eq!(
        count(&app, "kind <> 'credential_used'").await,
        others,
        "other kinds are kept"
    );
    assert_eq!(
        count(&app, "detail like 'old %' and kind <> 'credential_used'").await,
        2
    );

    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the task stopped")
        .expect("join");
}
