//! Deterministic building blocks of the simulator: hashing, a small PRNG,
//! the symbol table and number formatting.

use rust_decimal::Decimal;
use uuid::Uuid;

/// Symbols accounts are generated from, with exchange, current price and
/// previous close. Prices are in whole even cents so that half-share
/// quantities still give whole-cent market values.
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

/// A whole-share-only stock (orders for fractions or dollar amounts are refused).
pub const WHOLE_SHARES_ONLY: (&str, &str, i64, i64) = ("ACME", "NYSE", 4200, 4150);

/// A delisted stock Alpaca cannot price or trade; accounts whose key id
/// contains `NOPRICE` hold some, reported with `null` prices.
pub const UNPRICED: &str = "LEHMQ";

/// Quarterly dividend per share, in hundredths of a cent, of the symbols that pay one.
const DIVIDENDS: [(&str, i64); 6] = [
    ("AAPL", 2500),
    ("MSFT", 8300),
    ("SPY", 17500),
    ("QQQ", 7400),
    ("ACME", 3000),
    ("NVDA", 100),
];

/// What the simulator says about one asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetInfo {
    /// Ticker symbol.
    pub symbol: &'static str,
    /// Listing exchange.
    pub exchange: &'static str,
    /// Official-sounding name.
    pub name: &'static str,
    /// Whether orders are accepted.
    pub tradable: bool,
    /// Whether fractions and dollar amounts are accepted.
    pub fractionable: bool,
}

/// Every asset the simulator knows.
pub fn asset(symbol: &str) -> Option<AssetInfo> {
    let name = |s: &str| match s {
        "AAPL" => "Apple Inc. Common Stock",
        "MSFT" => "Microsoft Corporation Common Stock",
        "NVDA" => "NVIDIA Corporation Common Stock",
        "AMZN" => "Amazon.com, Inc. Common Stock",
        "GOOGL" => "Alphabet Inc. Class A Common Stock",
        "TSLA" => "Tesla, Inc. Common Stock",
        "SPY" => "SPDR S&P 500 ETF Trust",
        "QQQ" => "Invesco QQQ Trust, Series 1",
        "META" => "Meta Platforms, Inc. Class A Common Stock",
        "AMD" => "Advanced Micro Devices, Inc. Common Stock",
        _ => "",
    };
    match symbol {
        "ACME" => Some(AssetInfo {
            symbol: WHOLE_SHARES_ONLY.0,
            exchange: WHOLE_SHARES_ONLY.1,
            name: "Acme Corporation Common Stock",
            tradable: true,
            fractionable: false,
        }),
        UNPRICED => Some(AssetInfo {
            symbol: UNPRICED,
            exchange: "OTC",
            name: "Lehman Brothers Holdings Inc. (delisted)",
            tradable: false,
            fractionable: false,
        }),
        _ => row(symbol).map(|row| AssetInfo {
            symbol: row.0,
            exchange: row.1,
            name: name(row.0),
            tradable: true,
            fractionable: true,
        }),
    }
}

/// Quarterly dividend per share, if the symbol pays one.
pub fn dividend(symbol: &str) -> Option<Decimal> {
    DIVIDENDS
        .iter()
        .find(|(s, _)| *s == symbol)
        .map(|(_, v)| Decimal::new(*v, 4))
}

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
    SYMBOLS
        .iter()
        .chain(std::iter::once(&WHOLE_SHARES_ONLY))
        .find(|(s, ..)| *s == symbol)
}

/// The simulator's starting price of a symbol (`None` for unknown symbols
/// and for the unpriced one); `Simulator::set_price` moves it.
pub fn price(symbol: &str) -> Option<Decimal> {
    row(symbol).map(|r| Decimal::new(r.2, 2))
}

/// Simulated previous close of a symbol.
pub fn lastday_price(symbol: &str) -> Option<Decimal> {
    row(symbol).map(|r| Decimal::new(r.3, 2))
}

/// Listing exchange of a symbol.
pub fn exchange(symbol: &str) -> &'static str {
    asset(symbol).map(|a| a.exchange).unwrap_or("NASDAQ")
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
    fn the_asset_table_knows_whole_share_and_untradable_assets() {
        assert!(asset("AAPL").is_some_and(|a| a.tradable && a.fractionable));
        assert!(asset("ACME").is_some_and(|a| a.tradable && !a.fractionable));
        assert!(asset("LEHMQ").is_some_and(|a| !a.tradable));
        assert_eq!(price("LEHMQ"), None);
        assert_eq!(price("ACME"), Some(Decimal::new(4200, 2)));
        assert!(asset("ZZZZ").is_none());
    }

    #[test]
    fn formatting() {
        assert_eq!(money(Decimal::new(1000, 0)), "1000.00");
        assert_eq!(money(Decimal::new(12345, 3)), "12.345");
        assert_eq!(quantity(Decimal::new(150, 2)), "1.5");
        assert_eq!(number(Decimal::new(10023456, 2)).to_string(), "100234.56");
    }
}
