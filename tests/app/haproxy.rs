//! haproxy for the replica test: Debian's haproxy running `deploy/haproxy.cfg`
//! itself (with local addresses), terminating TLS with a certificate that a CA
//! made at test time signed; its stats socket tells what it thinks of each
//! replica.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::header;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::Visitor;

const PROXY_CONFIG: &str = include_str!("../../deploy/haproxy.cfg");

/// The path of `program`, or a panic naming the Debian package to install.
pub fn require(program: &str, package: &str) -> PathBuf {
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
pub fn certificates(openssl: &Path, dir: &Path) -> reqwest::Certificate {
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
pub struct Proxy {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Proxy {
    pub fn start(haproxy: &Path, dir: &Path, port: u16, replicas: [&str; 2]) -> Self {
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

    pub fn base(&self) -> String {
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

    pub async fn wait_for(&self, server: &str, state: &str) {
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
    pub fn visitor(&self, ca: &reqwest::Certificate, client: Option<&str>) -> Visitor {
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

/// A free port below Linux's ephemeral range (32768 and up), so that no other
/// test's `127.0.0.1:0` takes it between this check and haproxy binding it.
pub fn proxy_port() -> u16 {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    (start..32_000)
        .chain(20_000..start)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port for haproxy")
}
