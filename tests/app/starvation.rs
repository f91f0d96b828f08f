//! No member can hold the database hostage by making Paddock wait for Alpaca:
//! enrollment, rotation and orders release their connection before the call.

use std::{sync::Arc, time::Duration};

use paddock::alpaca::Environment;
use reqwest::StatusCode;

use crate::{
    credentials::enroll,
    helpers::{Options, TestApp, Visitor, fresh_token, idle_in_transaction, wait_until},
    portfolio::seed_credential,
};

const SECRET: &str = "hangsecret000000000000000000000000000001";

/// An app whose pool is much smaller than the number of hung requests, so a
/// request that held its connection while waiting would starve everyone else.
async fn small_pool_app() -> TestApp {
    TestApp::spawn_with(Options {
        pool_size: 8,
        request_timeout: Duration::from_secs(3),
        ..Options::default()
    })
    .await
}

/// Another organization's member loads their pages while the hung requests wait.
async fn bystander_is_served(app: &TestApp, bystander: &Visitor) {
    assert_eq!(idle_in_transaction(&app.database).await, 0);
    for path in ["/credentials", "/org", "/activity"] {
        let page = bystander.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path} while Alpaca hangs");
    }
}

#[tokio::test]
async fn twenty_four_hung_enrollments_do_not_starve_another_organization() {
    let app = small_pool_app().await;
    let bystander = app.owner("zed@example.com", "Elsewhere").await;
    let mut members = Vec::new();
    for i in 0..12 {
        members.push(Arc::new(
            app.owner(&format!("m{i}@example.com"), &format!("Club {i}"))
                .await,
        ));
    }
    let mut pending = Vec::new();
    for (i, member) in members.iter().enumerate() {
        for j in 0..2 {
            let member = member.clone();
            let key = format!("PKHUNG{i:02}{j}ACCOUNTHANG");
            pending.push(tokio::spawn(async move {
                member
                    .post(
                        "/credentials",
                        &[
                            ("label", "Hung"),
                            ("environment", "paper"),
                            ("api_key_id", &key),
                            ("secret_key", SECRET),
                        ],
                    )
                    .await
            }));
        }
    }
    wait_until(Duration::from_secs(10), "24 verifications hang", || async {
        app.sim.request_count() >= 24
    })
    .await;
    bystander_is_served(&app, &bystander).await;
    for page in pending {
        let page = page.await.expect("enrollment");
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            page.alert().contains("Alpaca is unavailable right now"),
            "{}",
            page.alert()
        );
    }
    let saved: i64 = sqlx::query_scalar("select count(*) from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(saved, 0, "nothing is saved when Alpaca never answers");
}

#[tokio::test]
async fn a_member_cannot_run_more_than_two_verifications_at_once() {
    let app = small_pool_app().await;
    let ada = Arc::new(app.owner("ada@example.com", "Club").await);
    let pending: Vec<_> = (0..2)
        .map(|j| {
            let ada = ada.clone();
            tokio::spawn(async move {
                let key = format!("PKADAHUNG{j}ACCOUNTHANG");
                ada.post(
                    "/credentials",
                    &[
                        ("label", "Hung"),
                        ("environment", "paper"),
                        ("api_key_id", &key),
                        ("secret_key", SECRET),
                    ],
                )
                .await
            })
        })
        .collect();
    wait_until(
        Duration::from_secs(10),
        "two verifications hang",
        || async { app.sim.request_count() >= 2 },
    )
    .await;
    let third = ada
        .post(
            "/credentials",
            &[
                ("label", "Third"),
                ("environment", "paper"),
                ("api_key_id", "PKADAHUNG3ACCOUNTHANG"),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert_eq!(third.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        third.alert().contains("still checking"),
        "{}",
        third.alert()
    );
    assert_eq!(app.sim.request_count(), 2, "the third never reached Alpaca");
    for page in pending {
        page.await.expect("enrollment");
    }
    // Once those finished, the member may verify again.
    enroll(
        &ada,
        "Fine",
        "PKADAFINEACCOUNT0001",
        "adasecret00000000000000000000000000001",
        "paper",
    )
    .await;
}

#[tokio::test]
async fn twenty_four_hung_rotations_do_not_starve_another_organization() {
    let app = small_pool_app().await;
    let bystander = app.owner("zed@example.com", "Elsewhere").await;
    let mut pending = Vec::new();
    for i in 0..12 {
        let email = format!("m{i}@example.com");
        let member = Arc::new(app.owner(&email, &format!("Club {i}")).await);
        let key = format!("PKROTATE{i:02}ACCOUNT0001");
        enroll(&member, "Main", &key, SECRET, "paper").await;
        let id: String = sqlx::query_scalar(
            "select c.id::text from credentials c join members m on m.id = c.member_id where m.email = $1",
        )
        .bind(&email)
        .fetch_one(&app.admin)
        .await
        .expect("credential");
        for _ in 0..2 {
            let member = member.clone();
            let path = format!("/credentials/{id}/rotate");
            // Same account (the stem before the last four), a key that hangs.
            let key = format!("PKROTATE{i:02}ACCOUNTHANG");
            pending.push(tokio::spawn(async move {
                member
                    .post(&path, &[("api_key_id", &key), ("secret_key", SECRET)])
                    .await
            }));
        }
    }
    let before = 12; // one verification per enrollment above
    wait_until(Duration::from_secs(10), "24 rotations hang", || async {
        app.sim.request_count() >= before + 24
    })
    .await;
    bystander_is_served(&app, &bystander).await;
    for page in pending {
        let page = page.await.expect("rotation");
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}

#[tokio::test]
async fn twenty_four_hung_orders_do_not_starve_another_organization() {
    let app = small_pool_app().await;
    let bystander = app.owner("zed@example.com", "Elsewhere").await;
    let ada = Arc::new(app.owner("ada@example.com", "Club").await);
    let id = seed_credential(
        &app,
        "ada@example.com",
        "Stuck",
        "PKSTUCKACCOUNT00HANG",
        Environment::Paper,
    )
    .await;
    let pending: Vec<_> = (0..24)
        .map(|_| {
            let ada = ada.clone();
            let path = format!("/accounts/{id}/orders");
            tokio::spawn(async move {
                ada.post(
                    &path,
                    &[
                        ("symbol", "AAPL"),
                        ("side", "buy"),
                        ("qty", "1"),
                        ("order_type", "market"),
                        ("time_in_force", "day"),
                        ("order_token", &fresh_token()),
                    ],
                )
                .await
            })
        })
        .collect();
    wait_until(Duration::from_secs(10), "24 orders hang", || async {
        app.sim.request_count() >= 24
    })
    .await;
    bystander_is_served(&app, &bystander).await;
    for page in pending {
        let page = page.await.expect("order");
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
