//! The embedded cluster: pinned to its own major version, and brought back by
//! itself when its postmaster dies.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;

use crate::{
    helpers::{PASSWORD, Visitor},
    process::{Serve, TempDir, ada_is_back, paddock, run, serving_ada},
};

/// A data dir whose cluster claims to be of PostgreSQL `major`.
fn data_dir_of_major(name: &str, major: &str) -> TempDir {
    let dir = TempDir::new(name);
    std::fs::create_dir_all(dir.path().join("pg")).expect("pg dir");
    std::fs::write(dir.path().join("pg/PG_VERSION"), format!("{major}\n")).expect("PG_VERSION");
    dir
}

#[tokio::test]
async fn serve_refuses_a_cluster_of_an_older_major_and_names_db_upgrade() {
    let dir = data_dir_of_major("older", "14");
    let mut cmd = paddock(dir.path());
    cmd.arg("serve");
    let (ok, _, stderr) = run(cmd);
    assert!(!ok, "serve must refuse");
    assert!(
        stderr.contains("created by PostgreSQL 14") && stderr.contains("`paddock db upgrade`"),
        "{stderr}"
    );
    assert!(stderr.contains("postgresql-14"), "{stderr}");
    assert!(
        !dir.path().join("pg/postmaster.pid").exists(),
        "no server was started with other binaries"
    );
}

#[tokio::test]
async fn serve_refuses_a_cluster_of_a_major_that_is_not_installed_and_names_the_package() {
    let dir = data_dir_of_major("newer", "99");
    let mut cmd = paddock(dir.path());
    cmd.arg("serve");
    let (ok, _, stderr) = run(cmd);
    assert!(!ok, "serve must refuse");
    assert!(
        stderr.contains("created by PostgreSQL 99, which is not installed")
            && stderr.contains("install the `postgresql-99` package"),
        "{stderr}"
    );
    assert!(!stderr.contains("db upgrade"), "{stderr}");
}

#[tokio::test]
async fn db_upgrade_without_the_old_binaries_says_which_package_it_needs() {
    let dir = data_dir_of_major("upgrade-older", "14");
    let mut cmd = paddock(dir.path());
    cmd.args(["db", "upgrade"]);
    let (ok, _, stderr) = run(cmd);
    assert!(!ok);
    assert!(
        stderr.contains("install the `postgresql-14` package"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pg/PG_VERSION")).expect("still there"),
        "14\n",
        "the old cluster is untouched"
    );
}

#[tokio::test]
async fn db_upgrade_on_the_newest_installed_major_has_nothing_to_do() {
    let installed = paddock::db::binaries::installed();
    let newest = installed
        .iter()
        .map(|i| i.major)
        .max()
        .expect("PostgreSQL is installed");
    let dir = data_dir_of_major("upgrade-newest", &newest.to_string());
    let mut cmd = paddock(dir.path());
    cmd.args(["db", "upgrade"]);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("already runs PostgreSQL {newest}")),
        "{stdout}"
    );
}

/// The pid on the first line of the cluster's lock file, if there is one.
fn postmaster_pid(dir: &TempDir) -> Option<u32> {
    let text = std::fs::read_to_string(dir.path().join("pg/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

#[tokio::test]
async fn after_kill_9_of_the_postmaster_serving_resumes_by_itself_and_nothing_committed_is_lost() {
    let dir = TempDir::new("supervised");
    let (server, ada) = serving_ada(&dir).await;
    let ada = Arc::new(ada);
    let invite = ada.create_invite().await;
    assert_eq!(ada.get("/portfolio").await.status, StatusCode::OK);

    // Four clients load pages throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (ada, stop) = (ada.clone(), stop.clone());
            tokio::spawn(async move {
                let path = if i % 2 == 0 {
                    "/portfolio"
                } else {
                    "/credentials"
                };
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.push(ada.get(path).await.status);
                }
                seen
            })
        })
        .collect();

    let before = postmaster_pid(&dir).expect("the postmaster's pid");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &before.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());

    // Serving resumes without restarting Paddock.
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = Visitor::new(&server.base);
    loop {
        let restarted = postmaster_pid(&dir).is_some_and(|pid| pid != before);
        if restarted
            && health.get("/healthz").await.status == StatusCode::OK
            && ada.get("/portfolio").await.status == StatusCode::OK
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pages did not come back within 30 s:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for client in clients {
        statuses.extend(client.await.expect("client"));
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "only pages or the 503 page: {statuses:?}"
    );
    assert!(!statuses.is_empty(), "the clients were loading pages");
    server
        .wait_for_log(
            "the embedded PostgreSQL is running again",
            Duration::from_secs(5),
        )
        .await;

    // What was committed before the kill is all there.
    let credentials = ada.get("/credentials").await;
    assert!(credentials.body.contains("Main"), "{}", credentials.body);
    let bob = Visitor::new(&server.base);
    assert_eq!(
        bob.sign_in("ada@example.com", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let carol = Visitor::new(&server.base);
    let joined = carol.sign_up("carol@example.com", "", &invite).await;
    assert_eq!(
        joined.status,
        StatusCode::SEE_OTHER,
        "the invite survived: {}",
        joined.body
    );

    let (ok, log) = server.stop();
    assert!(ok, "graceful exit:\n{log}");
    assert!(log.contains("restarting it"), "{log}");
    assert!(
        !dir.path().join("pg/postmaster.pid").exists(),
        "the restarted server was stopped on shutdown"
    );
}

/// `paddock db upgrade` itself needs two majors, and only one is installable
/// here; its machinery (backup, pg_upgrade, swap, first start) runs for real
/// from the installed major to itself, which pg_upgrade accepts.
#[tokio::test]
async fn the_upgrade_takes_a_backup_moves_the_data_and_keeps_the_old_cluster() {
    let dir = TempDir::new("upgrade");
    let (server, _ada) = serving_ada(&dir).await;
    let (ok, log) = server.stop();
    assert!(ok, "{log}");

    let data_dir = dir.path().to_string_lossy().into_owned();
    let settings = paddock::config::Settings::from_lookup(|k| {
        (k == "PADDOCK_DATA_DIR").then(|| data_dir.clone())
    })
    .expect("settings");
    let major = paddock::db::binaries::cluster_major(&dir.path().join("pg"))
        .expect("PG_VERSION")
        .expect("a cluster");
    let installation = paddock::db::binaries::installed()
        .into_iter()
        .find(|i| i.major == major)
        .expect("the cluster's own binaries");
    let done = paddock::upgrade::run(&settings, installation.clone(), installation.clone())
        .await
        .expect("upgrade");
    assert!(std::fs::metadata(&done.backup).expect("backup").len() > 0);
    assert!(
        done.old_cluster.join("PG_VERSION").is_file(),
        "old cluster kept"
    );
    assert!(dir.path().join("pg/PG_VERSION").is_file());
    assert!(!dir.path().join("pg.upgrading").exists());

    let again = paddock::upgrade::run(&settings, installation.clone(), installation)
        .await
        .expect_err("the kept old cluster is in the way");
    assert!(format!("{again:#}").contains("already exists"), "{again:#}");

    let server = Serve::start(paddock(dir.path()));
    let back = ada_is_back(&server).await;
    assert!(back.get("/credentials").await.body.contains("Main"));
    let (ok, log) = server.stop();
    assert!(ok, "{log}");
}
