//! Reuse of account reads (SPEC "Rate limits"): concurrent views of one account
//! share one set of Alpaca calls, and a finished read is reused for up to
//! `PADDOCK_ALPACA_CACHE_SECS` seconds. A view that reuses or shares a read
//! unseals nothing (so records no key use): only the view that leads the
//! calls does.
//!
//! Entries are keyed by member, credential and a version of the credential row
//! (its sealed values and when an order action last changed the account), so
//! one member can never be shown another's data, and a rotated, rewrapped or
//! order-changed credential (on any server: the version is read from the
//! database with every page) never meets an older read. The cache is per process: with several replicas each keeps
//! its own short window.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use tokio::sync::watch;

use crate::{
    domain::{CredentialId, MemberId},
    portfolio::{Period, Snapshot},
};

/// What a read came to: the account's data, or the person-facing reason it failed.
pub type Outcome = Result<Arc<Snapshot>, String>;

/// One account read: whose, which version of the credential, and what was read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub member: MemberId,
    pub credential: CredentialId,
    /// A digest of what identifies this version of the credential row.
    pub version: [u8; 32],
    pub period: Period,
    pub with_orders: bool,
}

/// A digest of `parts` (each length-prefixed), for [`Key::version`].
pub fn version_of(parts: &[&[u8]]) -> [u8; 32] {
    let mut input = Vec::new();
    for part in parts {
        input.extend_from_slice(&(part.len() as u64).to_le_bytes());
        input.extend_from_slice(part);
    }
    let mut version = [0u8; 32];
    if let Ok(digest) = orion::hash::digest(&input) {
        version.copy_from_slice(digest.as_ref());
    }
    version
}

enum Slot {
    Ready {
        fetched: Instant,
        snapshot: Arc<Snapshot>,
    },
    Loading {
        flight: u64,
        outcome: watch::Receiver<Option<Outcome>>,
    },
}

struct Slots {
    map: HashMap<Key, Slot>,
    next_flight: u64,
    swept: Instant,
}

struct Inner {
    ttl: Duration,
    slots: Mutex<Slots>,
}

/// Recent and in-flight account reads. Cheap to clone; clones share entries.
#[derive(Clone)]
pub struct AccountCache(Arc<Inner>);

/// What a view should do about one account.
pub enum Claim {
    /// A read finished less than the reuse window ago.
    Reuse(Arc<Snapshot>),
    /// Another view is reading it now: wait for that.
    Join(Joined),
    /// Read it (unseal, record, call Alpaca), then [`Flight::finish`].
    Lead(Flight),
}

/// A view waiting for another view's read.
pub struct Joined(watch::Receiver<Option<Outcome>>);

impl Joined {
    /// The leading view's outcome; `None` if it gave up without one.
    pub async fn outcome(mut self) -> Option<Outcome> {
        self.0
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|outcome| outcome.clone())
    }
}

/// The duty to read one account for everyone who joins. Dropped unfinished,
/// it frees the account for the next view, and those who joined get `None`.
pub struct Flight {
    cache: AccountCache,
    /// `None` when reuse is off: nobody can join.
    key: Option<Key>,
    id: u64,
    started: Instant,
    sender: watch::Sender<Option<Outcome>>,
    finished: bool,
}

impl AccountCache {
    /// A cache reusing reads for `ttl`; zero turns reuse and sharing off.
    pub fn new(ttl: Duration) -> Self {
        Self(Arc::new(Inner {
            ttl,
            slots: Mutex::new(Slots {
                map: HashMap::new(),
                next_flight: 0,
                swept: Instant::now(),
            }),
        }))
    }

    /// Whether reads are reused (and shared) at all.
    pub fn reuses(&self) -> bool {
        !self.0.ttl.is_zero()
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.0.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reuse, join or lead the read of `key`.
    pub fn claim(&self, key: Key) -> Claim {
        self.claim_at(key, Instant::now())
    }

    fn claim_at(&self, key: Key, now: Instant) -> Claim {
        let ttl = self.0.ttl;
        if ttl.is_zero() {
            return Claim::Lead(self.flight(None, 0, now));
        }
        let mut slots = self.slots();
        if now.saturating_duration_since(slots.swept) > ttl {
            slots.map.retain(|_, slot| match slot {
                Slot::Ready { fetched, .. } => now.saturating_duration_since(*fetched) < ttl,
                Slot::Loading { .. } => true,
            });
            slots.swept = now;
        }
        match slots.map.get(&key) {
            Some(Slot::Ready { fetched, snapshot })
                if now.saturating_duration_since(*fetched) < ttl =>
            {
                return Claim::Reuse(snapshot.clone());
            }
            Some(Slot::Loading { outcome, .. }) => return Claim::Join(Joined(outcome.clone())),
            _ => {}
        }
        slots.next_flight += 1;
        let id = slots.next_flight;
        let flight = self.flight(Some(key.clone()), id, now);
        slots.map.insert(
            key,
            Slot::Loading {
                flight: id,
                outcome: flight.sender.subscribe(),
            },
        );
        Claim::Lead(flight)
    }

    fn flight(&self, key: Option<Key>, id: u64, started: Instant) -> Flight {
        Flight {
            cache: self.clone(),
            key,
            id,
            started,
            sender: watch::Sender::new(None),
            finished: false,
        }
    }

    /// Forgets every read of `credential` (after an order action), including one
    /// in flight: its outcome still reaches those who joined it, but is not kept.
    pub fn forget(&self, credential: CredentialId) {
        self.slots()
            .map
            .retain(|key, _| key.credential != credential);
    }

    /// Removes `key`'s slot if it is still flight `id`'s, keeping `snapshot`
    /// there instead when given.
    fn settle(&self, key: &Key, id: u64, fetched: Instant, snapshot: Option<Arc<Snapshot>>) {
        let mut slots = self.slots();
        if !matches!(slots.map.get(key), Some(Slot::Loading { flight, .. }) if *flight == id) {
            return;
        }
        match snapshot {
            Some(snapshot) => {
                slots
                    .map
                    .insert(key.clone(), Slot::Ready { fetched, snapshot });
            }
            None => {
                slots.map.remove(key);
            }
        }
    }
}

impl Flight {
    /// Hands the read's outcome to everyone who joined and, when it succeeded,
    /// keeps it for reuse (counted from when the read started).
    pub fn finish(mut self, outcome: &Outcome) {
        self.finished = true;
        if let Some(key) = &self.key {
            self.cache
                .settle(key, self.id, self.started, outcome.as_ref().ok().cloned());
        }
        self.sender.send_replace(Some(outcome.clone()));
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if let (false, Some(key)) = (self.finished, &self.key) {
            self.cache.settle(key, self.id, self.started, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alpaca::Account;

    fn key(credential: CredentialId) -> Key {
        Key {
            member: MemberId(uuid::Uuid::nil()),
            credential,
            version: version_of(&[b"sealed"]),
            period: Period::Month,
            with_orders: false,
        }
    }

    fn snapshot(number: &str) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            account: Account {
                account_number: number.into(),
                ..Account::default()
            },
            positions: Vec::new(),
            history: Vec::new(),
            orders: None,
            clock: None,
        })
    }

    fn lead(claim: Claim) -> Flight {
        match claim {
            Claim::Lead(flight) => flight,
            _ => panic!("expected to lead"),
        }
    }

    #[tokio::test]
    async fn concurrent_views_share_one_read_and_the_next_reuses_it() {
        let cache = AccountCache::new(Duration::from_secs(2));
        let credential = CredentialId::new();
        let flight = lead(cache.claim(key(credential)));
        let Claim::Join(joined) = cache.claim(key(credential)) else {
            panic!("a second view joins the read in flight");
        };
        flight.finish(&Ok(snapshot("PA1")));
        let shared = joined.outcome().await.expect("outcome").expect("snapshot");
        assert_eq!(shared.account.account_number, "PA1");
        let Claim::Reuse(reused) = cache.claim(key(credential)) else {
            panic!("a finished read is reused");
        };
        assert!(Arc::ptr_eq(&reused, &shared));
    }

    #[test]
    fn a_read_is_reused_only_within_the_window() {
        let ttl = Duration::from_secs(2);
        let cache = AccountCache::new(ttl);
        let credential = CredentialId::new();
        let start = Instant::now();
        lead(cache.claim_at(key(credential), start)).finish(&Ok(snapshot("PA1")));
        assert!(matches!(
            cache.claim_at(key(credential), start + ttl / 2),
            Claim::Reuse(_)
        ));
        lead(cache.claim_at(key(credential), start + ttl));
    }

    #[test]
    fn with_reuse_off_every_view_leads_its_own_read() {
        let cache = AccountCache::new(Duration::ZERO);
        let credential = CredentialId::new();
        let first = lead(cache.claim(key(credential)));
        lead(cache.claim(key(credential)));
        first.finish(&Ok(snapshot("PA1")));
        lead(cache.claim(key(credential)));
    }

    #[tokio::test]
    async fn failures_reach_those_who_joined_but_are_not_kept() {
        let cache = AccountCache::new(Duration::from_secs(2));
        let credential = CredentialId::new();
        let flight = lead(cache.claim(key(credential)));
        let Claim::Join(joined) = cache.claim(key(credential)) else {
            panic!("joins");
        };
        flight.finish(&Err("Alpaca is unavailable right now".into()));
        assert_eq!(
            joined.outcome().await.map(|o| o.err()),
            Some(Some("Alpaca is unavailable right now".into()))
        );
        lead(cache.claim(key(credential)));
    }

    #[tokio::test]
    async fn a_leader_that_gives_up_frees_the_account_for_the_next_view() {
        let cache = AccountCache::new(Duration::from_secs(2));
        let credential = CredentialId::new();
        let flight = lead(cache.claim(key(credential)));
        let Claim::Join(joined) = cache.claim(key(credential)) else {
            panic!("joins");
        };
        drop(flight);
        assert!(joined.outcome().await.is_none());
        lead(cache.claim(key(credential)));
    }

    #[tokio::test]
    async fn forgetting_an_account_drops_its_reads_even_one_in_flight() {
        let cache = AccountCache::new(Duration::from_secs(2));
        let (changed, other) = (CredentialId::new(), CredentialId::new());
        lead(cache.claim(key(other))).finish(&Ok(snapshot("PA2")));
        lead(cache.claim(key(changed))).finish(&Ok(snapshot("PA1")));
        let in_flight = lead(cache.claim(Key {
            with_orders: true,
            ..key(changed)
        }));
        let Claim::Join(joined) = cache.claim(Key {
            with_orders: true,
            ..key(changed)
        }) else {
            panic!("joins");
        };
        cache.forget(changed);
        in_flight.finish(&Ok(snapshot("PA1")));
        assert!(
            joined.outcome().await.is_some(),
            "those who joined still get it"
        );
        lead(cache.claim(key(changed)));
        lead(cache.claim(Key {
            with_orders: true,
            ..key(changed)
        }));
        assert!(matches!(cache.claim(key(other)), Claim::Reuse(_)));
    }

    #[test]
    fn another_member_or_version_never_meets_a_read() {
        let cache = AccountCache::new(Duration::from_secs(2));
        let credential = CredentialId::new();
        lead(cache.claim(key(credential))).finish(&Ok(snapshot("PA1")));
        lead(cache.claim(Key {
            member: MemberId(uuid::Uuid::from_u128(7)),
            ..key(credential)
        }));
        lead(cache.claim(Key {
            version: version_of(&[b"rotated"]),
            ..key(credential)
        }));
        lead(cache.claim(Key {
            period: Period::Year,
            ..key(credential)
        }));
        assert_ne!(version_of(&[b"ab", b"c"]), version_of(&[b"a", b"bc"]));
    }
}
