//! Deterministic building blocks of the simulator: hashing, a small PRNG,
//! the symbol table and number formatting.

use rust_decimal::Decimal;
use uuid::Uuid;

/// Symbols the simulator knows, with exchange, current price and previous
/// close. Prices are in whole even cents so that half-share quantities still
/// give whole-cent market values.
pub const SYMBOLS: [(&str, &str, i64, i64); 10] = [
    ("AAPL", "NASDAQ", 22752, 22518),
    ("MSFT", "NASDAQ", 41526, 41804),
    ("NVDA", "NASDAQ", 12492, 12140),
    ("AMZN", "NASDAQ", 18644, 18496),
    ("GOOGL", "NASDAQ", 16372, 16430),
    ("TSLA", "NASDAQ", 24850, 23986),
    ("SPY", "ARCA", 56312, 56048),
    ("QQQ", "NASDAQ", 48238, 47992),
    ("META", "NASDAQ", 52184, 51522),
    ("AMD", "NASDAQ", 15266, 15504),
];

/// 64-bit FNV-1a: stable across Rust versions and platforms.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// SplitMix64 generator seeded from a hash.
pub struct SplitMix(u64);

impl SplitMix {
    /// Creates a generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A version-4-shaped UUID from the stream.
    pub fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

fn row(symbol: &str) -> Option<&'static (&'static str, &'static str, i64, i64)> {
    SYMBOLS.iter().find(|(s, ..)| *s == symbol)
}

/// Simulated current price of a symbol.
pub fn price(symbol: &str) -> Option<Decimal> {
    row(symbol).map(|r| Decimal::new(r.2, 2))
}

/// Simulated previous close of a symbol.
pub fn lastday_price(symbol: &str) -> Option<Decimal> {
    row(symbol).map(|r| Decimal::new(r.3, 2))
}

/// Listing exchange of a symbol.
pub fn exchange(symbol: &str) -> &'static str {
    row(symbol).map(|r| r.1).unwrap_or("NASDAQ")
}

/// Deterministic asset id of a symbol.
pub fn asset_id(symbol: &str) -> Uuid {
    SplitMix::new(fnv1a(format!("asset:{symbol}").as_bytes())).uuid()
}

/// Money as Alpaca prints it: at least two decimal places, more only when
/// the exact value needs them.
pub fn money(value: Decimal) -> String {
    let n = value.normalize();
    if n.scale() < 2 {
        format!("{n:.2}")
    } else {
        n.to_string()
    }
}

/// A quantity as Alpaca prints it (`10`, `1.5`).
pub fn quantity(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A ratio rounded to six places.
pub fn ratio(value: Decimal) -> String {
    value.round_dp(6).normalize().to_string()
}

/// A decimal as a JSON number (portfolio history uses numbers).
pub fn number(value: Decimal) -> serde_json::Value {
    value
        .normalize()
        .to_string()
        .parse::<serde_json::Number>()
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn formatting() {
        assert_eq!(money(Decimal::new(1000, 0)), "1000.00");
        assert_eq!(money(Decimal::new(12345, 3)), "12.345");
        assert_eq!(quantity(Decimal::new(150, 2)), "1.5");
        assert_eq!(number(Decimal::new(10023456, 2)).to_string(), "100234.56");
    }
}
