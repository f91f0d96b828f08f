//! Trading vocabulary shared by the database, the Alpaca client and the pages:
//! which Alpaca environment, and the order choices a member makes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which Alpaca environment a credential belongs to and a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Paper trading (`paper-api.alpaca.markets`).
    Paper,
    /// Live trading (`api.alpaca.markets`).
    Live,
}

impl Environment {
    /// `"paper"` or `"live"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Paper => "paper",
            Environment::Live => "live",
        }
    }

    /// The other environment.
    pub fn other(self) -> Self {
        match self {
            Environment::Paper => Environment::Live,
            Environment::Live => Environment::Paper,
        }
    }

    /// `"Paper"` or `"Live"`, for display.
    pub fn label(self) -> &'static str {
        match self {
            Environment::Paper => "Paper",
            Environment::Live => "Live",
        }
    }

    /// Parses `"paper"` / `"live"` (case-insensitive, surrounding whitespace
    /// ignored).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "paper" => Some(Environment::Paper),
            "live" => Some(Environment::Live),
            _ => None,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Defines a wire enum: Alpaca's lowercase name, a label for people, parsing.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal, $label:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            /// Every value, in the order a form offers them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// Alpaca's wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// The name people read.
            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)+
                }
            }

            /// Parses Alpaca's wire name (case-insensitive, whitespace ignored).
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Order side.
    Side {
        /// Buy.
        Buy => "buy", "Buy";
        /// Sell.
        Sell => "sell", "Sell";
    }
);

impl Side {
    /// The side that closes a position opened by this one.
    pub fn opposite(self) -> Self {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

wire_enum!(
    /// Order type.
    OrderType {
        /// Fills at the market price.
        Market => "market", "Market";
        /// Fills at the limit price or better.
        Limit => "limit", "Limit";
        /// Becomes a market order once the stop price trades.
        Stop => "stop", "Stop";
        /// Becomes a limit order once the stop price trades.
        StopLimit => "stop_limit", "Stop limit";
        /// A stop that follows the best price by a percentage or an amount.
        TrailingStop => "trailing_stop", "Trailing stop";
    }
);

wire_enum!(
    /// Time in force. Paddock's form offers the first four; Alpaca also knows
    /// the opening and closing auctions.
    TimeInForce {
        /// Good for the day.
        Day => "day", "Day";
        /// Good until cancelled.
        Gtc => "gtc", "GTC";
        /// Immediate or cancel.
        Ioc => "ioc", "IOC";
        /// Fill or kill.
        Fok => "fok", "FOK";
        /// Opening auction.
        Opg => "opg", "OPG";
        /// Closing auction.
        Cls => "cls", "CLS";
    }
);

impl TimeInForce {
    /// The choices on Paddock's order form.
    pub const OFFERED: [Self; 4] = [Self::Day, Self::Gtc, Self::Ioc, Self::Fok];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_strings() {
        assert_eq!(Environment::Paper.as_str(), "paper");
        assert_eq!(Environment::Live.label(), "Live");
        assert_eq!(Environment::parse(" LIVE "), Some(Environment::Live));
        assert_eq!(Environment::parse("demo"), None);
        assert_eq!(
            serde_json::to_string(&Environment::Paper).expect("json"),
            "\"paper\""
        );
    }

    #[test]
    fn wire_names_labels_and_parsing() {
        assert_eq!(OrderType::StopLimit.as_str(), "stop_limit");
        assert_eq!(OrderType::StopLimit.label(), "Stop limit");
        assert_eq!(
            OrderType::parse(" TRAILING_STOP"),
            Some(OrderType::TrailingStop)
        );
        assert_eq!(OrderType::parse("stop limit"), None);
        assert_eq!(TimeInForce::parse("GTC"), Some(TimeInForce::Gtc));
        assert_eq!(TimeInForce::Gtc.label(), "GTC");
        assert_eq!(Side::parse("Sell"), Some(Side::Sell));
        assert_eq!(Side::Buy.opposite(), Side::Sell);
        assert_eq!(
            serde_json::to_string(&OrderType::TrailingStop).expect("json"),
            "\"trailing_stop\""
        );
    }
}
