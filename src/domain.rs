//! Typed ids and parsed domain values, and the trading vocabulary ([`trading`]).

mod trading;

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use trading::{Environment, OrderType, Side, TimeInForce};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl $name {
            /// Parses an id from a URL segment; `None` for anything malformed.
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::parse_str(s).ok().map(Self)
            }
        }
    };
}

id_type!(
    /// An organization (tenant).
    OrganizationId
);
id_type!(
    /// A member (user) of an organization.
    MemberId
);
id_type!(
    /// One enrolled Alpaca key pair.
    CredentialId
);

impl CredentialId {
    /// A fresh id, chosen before sealing because it is part of the associated data.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for CredentialId {
    fn default() -> Self {
        Self::new()
    }
}

/// A member's role in their organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    /// Parses the database representation.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    /// The database representation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Owner => "Owner",
            Self::Member => "Member",
        }
    }
}

/// An email address, trimmed and lowercased, of a plausible shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses a typed email address; `None` if it is not plausibly one.
    pub fn parse(raw: &str) -> Option<Self> {
        let email = raw.trim().to_lowercase();
        let (local, domain) = email.split_once('@')?;
        let plausible = (3..=254).contains(&email.len())
            && !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@');
        plausible.then_some(Self(email))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.0),
            Some("ada@example.com".to_string())
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_none(), "{bad} should be refused");
        }
    }
}
