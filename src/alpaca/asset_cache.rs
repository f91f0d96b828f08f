//! Assets change rarely (a listing, a halt, fractionability), so the answer of
//! `GET /v2/assets/{symbol}` is reused for a while per environment and
//! symbol, shared by every member: it is public market data, not account data.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::{alpaca::models::Asset, domain::Environment};

/// How long an asset's answer is reused.
pub const ASSET_TTL: Duration = Duration::from_secs(10 * 60);

/// Most symbols remembered; beyond that, expired entries go, then everything.
const MAX_ENTRIES: usize = 10_000;

/// Recently fetched assets.
#[derive(Debug, Default)]
pub struct AssetCache {
    entries: Mutex<HashMap<(Environment, String), (Instant, Asset)>>,
}

impl AssetCache {
    /// The asset if fetched less than [`ASSET_TTL`] ago.
    pub fn get(&self, env: Environment, symbol: &str) -> Option<Asset> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&(env, symbol.to_owned()))
            .filter(|(at, _)| at.elapsed() < ASSET_TTL)
            .map(|(_, asset)| asset.clone())
    }

    /// Remembers an answer.
    pub fn put(&self, env: Environment, symbol: &str, asset: Asset) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < ASSET_TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert((env, symbol.to_owned()), (Instant::now(), asset));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asset_is_remembered_per_environment_and_symbol() {
        let cache = AssetCache::default();
        let asset = Asset {
            symbol: "AAPL".into(),
            tradable: true,
            ..Asset::default()
        };
        cache.put(Environment::Paper, "AAPL", asset.clone());
        assert_eq!(cache.get(Environment::Paper, "AAPL"), Some(asset));
        assert_eq!(cache.get(Environment::Live, "AAPL"), None);
        assert_eq!(cache.get(Environment::Paper, "MSFT"), None);
    }
}
