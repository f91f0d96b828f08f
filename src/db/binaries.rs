//! Which PostgreSQL binaries to run: a cluster only ever runs with the binaries
//! of its own major version (the one in its `PG_VERSION`).

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    process::Command,
};

/// One installed PostgreSQL server: its major version and its `bin` directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    pub major: u32,
    pub bin: PathBuf,
}

impl Installation {
    /// The path of `tool` (e.g. `pg_dump`) in this installation, or a message
    /// naming the Debian package that provides it.
    pub fn tool(&self, tool: &str) -> anyhow::Result<PathBuf> {
        let path = self.bin.join(tool);
        if path.is_file() {
            return Ok(path);
        }
        let package = if matches!(tool, "pg_dump" | "pg_restore" | "psql") {
            format!("postgresql-client-{}", self.major)
        } else {
            format!("postgresql-{}", self.major)
        };
        anyhow::bail!(
            "{tool} of PostgreSQL {} is not installed in {}: install the `{package}` package",
            self.major,
            self.bin.display()
        )
    }
}

/// Every installed PostgreSQL server, best first: those on `PATH` (in `PATH`
/// order), then `/usr/lib/postgresql/<major>/bin`, newest first.
pub fn installed() -> Vec<Installation> {
    let mut found: Vec<Installation> = Vec::new();
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path {
        let postgres = dir.join("postgres");
        if !(postgres.is_file() && dir.join("initdb").is_file()) {
            continue;
        }
        // A symlink into a versioned directory (Debian's layout) finds the
        // sibling tools (pg_dump, pg_upgrade) there.
        let bin = postgres
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or(dir);
        if let Some(major) = major_of(&bin) {
            found.push(Installation { major, bin });
        }
    }
    let mut versioned: Vec<Installation> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres")
                .is_file()
                .then_some(Installation { major, bin })
        })
        .collect();
    versioned.sort_by_key(|i| std::cmp::Reverse(i.major));
    for installation in versioned {
        if !found.iter().any(|f| f.bin == installation.bin) {
            found.push(installation);
        }
    }
    found
}

/// The major version `<bin>/postgres --version` reports.
fn major_of(bin: &Path) -> Option<u32> {
    let out = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    parse_major(&String::from_utf8_lossy(&out.stdout))
}

/// `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → 15.
pub fn parse_major(version: &str) -> Option<u32> {
    let word = version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The major version a cluster's data directory was created by, if initialized.
pub fn cluster_major(pgdata: &Path) -> anyhow::Result<Option<u32>> {
    let file = pgdata.join("PG_VERSION");
    match fs::read_to_string(&file) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            anyhow::anyhow!(
                "{} does not hold a PostgreSQL major version",
                file.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", file.display()))),
    }
}

/// Why no installation fits a cluster.
#[derive(Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// No PostgreSQL server at all.
    NoneInstalled,
    /// The cluster's major is missing, but a newer one is installed.
    OnlyNewer { cluster: u32, newest: u32 },
    /// The cluster's major is missing and nothing newer is installed.
    Missing { cluster: u32 },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoneInstalled => write!(
                f,
                "PostgreSQL server binaries (initdb, postgres) not found: install the `postgresql` package (sudo apt-get install postgresql), or set DATABASE_URL and DATABASE_ADMIN_URL"
            ),
            Self::OnlyNewer { cluster, newest } => write!(
                f,
                "the embedded database was created by PostgreSQL {cluster}, but only PostgreSQL {newest} is installed, and a cluster runs only with its own major version. Run `paddock db upgrade` to upgrade it to PostgreSQL {newest} (it takes a backup first and needs PostgreSQL {cluster}'s binaries too: install `postgresql-{cluster}` alongside), or install `postgresql-{cluster}` to keep running it as it is"
            ),
            Self::Missing { cluster } => write!(
                f,
                "the embedded database was created by PostgreSQL {cluster}, which is not installed: install the `postgresql-{cluster}` package"
            ),
        }
    }
}

impl std::error::Error for Mismatch {}

/// The installation to run a cluster of major `cluster` with; `None` (a cluster
/// still to be created) takes the best installed one.
pub fn choose(cluster: Option<u32>, installed: &[Installation]) -> Result<Installation, Mismatch> {
    let Some(cluster) = cluster else {
        return installed.first().cloned().ok_or(Mismatch::NoneInstalled);
    };
    if let Some(exact) = installed.iter().find(|i| i.major == cluster) {
        return Ok(exact.clone());
    }
    match installed.iter().map(|i| i.major).max() {
        None => Err(Mismatch::NoneInstalled),
        Some(newest) if newest > cluster => Err(Mismatch::OnlyNewer { cluster, newest }),
        Some(_) => Err(Mismatch::Missing { cluster }),
    }
}

/// Client tools that can talk to a server of major `server`: the same major, else
/// the oldest newer one (pg_dump reads older servers, never newer ones).
pub fn client_for(server: u32, installed: &[Installation]) -> anyhow::Result<Installation> {
    if let Some(exact) = installed.iter().find(|i| i.major == server) {
        return Ok(exact.clone());
    }
    installed
        .iter()
        .filter(|i| i.major > server)
        .min_by_key(|i| i.major)
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the database runs PostgreSQL {server}, and no PostgreSQL {server} (or newer) client tools are installed: install the `postgresql-client-{server}` package"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(majors: &[u32]) -> Vec<Installation> {
        majors
            .iter()
            .map(|&major| Installation {
                major,
                bin: format!("/usr/lib/postgresql/{major}/bin").into(),
            })
            .collect()
    }

    #[test]
    fn versions_are_read_from_the_server_banner() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 17beta1"), Some(17));
        assert_eq!(parse_major("garbage"), None);
    }

    #[test]
    fn a_cluster_runs_with_its_own_major_even_when_a_newer_one_is_first() {
        let chosen = choose(Some(15), &at(&[16, 15])).expect("15 is installed");
        assert_eq!(chosen.major, 15);
    }

    #[test]
    fn a_new_cluster_takes_the_first_installation() {
        assert_eq!(choose(None, &at(&[16, 15])).expect("any").major, 16);
        assert_eq!(choose(None, &[]), Err(Mismatch::NoneInstalled));
    }

    #[test]
    fn only_a_newer_major_means_upgrade_and_the_message_says_how() {
        let mismatch = choose(Some(14), &at(&[15])).expect_err("14 is missing");
        assert_eq!(
            mismatch,
            Mismatch::OnlyNewer {
                cluster: 14,
                newest: 15
            }
        );
        let text = mismatch.to_string();
        assert!(text.contains("paddock db upgrade") && text.contains("postgresql-14"));
    }

    #[test]
    fn a_missing_major_with_nothing_newer_names_the_package() {
        let mismatch = choose(Some(16), &at(&[15])).expect_err("16 is missing");
        assert_eq!(mismatch, Mismatch::Missing { cluster: 16 });
        assert!(mismatch.to_string().contains("`postgresql-16`"));
        assert!(!mismatch.to_string().contains("upgrade"));
    }

    #[test]
    fn client_tools_may_be_newer_than_the_server_never_older() {
        assert_eq!(client_for(15, &at(&[17, 16])).expect("newer").major, 16);
        assert_eq!(client_for(15, &at(&[17, 15])).expect("exact").major, 15);
        let err = client_for(16, &at(&[15])).expect_err("older only");
        assert!(err.to_string().contains("postgresql-client-16"));
    }
}
