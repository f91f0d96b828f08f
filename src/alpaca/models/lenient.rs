//! Lenient field readers for Alpaca's JSON.
//!
//! Alpaca documents decimals as strings, yet sends some as numbers (portfolio
//! history, `qty` in some order bodies) and some integers as strings (a live
//! account's `daytrade_count: "0"`); it sends `null` for prices it cannot
//! compute, `""` for fields a multi-leg order has only on its legs, and new
//! fields and enum values over time. Every reader here turns a value it cannot
//! use into "unknown" (`None`, `""` or `false`) instead of failing the whole
//! body: one unreadable field costs that value, never the account.
//!
//! Use with `#[serde(default, deserialize_with = "lenient::…")]`.

use std::{borrow::Cow, str::FromStr};

use rust_decimal::Decimal;
use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::Value;
use time::{Date, OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

/// Parses a decimal from its textual form (plain or scientific notation).
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    Decimal::from_str(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

/// A decimal from a JSON value: a string or a number. A number is read from
/// its shortest round-tripping text, which is what the sender wrote, so no
/// binary floating-point error leaks into the value.
pub fn decimal_of(value: &Value) -> Option<Decimal> {
    match value {
        Value::String(s) => parse_decimal(s),
        Value::Number(n) => parse_decimal(&n.to_string()),
        _ => None,
    }
}

/// One JSON value as a lenient reader sees it, read straight from the body:
/// text is borrowed where the body allows, and an array or object is skipped
/// over (its kind kept for the log) instead of being built.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(Cow<'a, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::Int(_) | Self::UInt(_) | Self::Float(_) => "number",
            Self::Text(_) => "string",
            Self::Array => "array",
            Self::Object => "object",
        }
    }

    /// A number's text as `serde_json` writes it (the shortest that reads back).
    fn number_text(&self) -> Option<String> {
        match self {
            Self::Int(i) => Some(i.to_string()),
            Self::UInt(u) => Some(u.to_string()),
            Self::Float(f) => serde_json::Number::from_f64(*f).map(|n| n.to_string()),
            _ => None,
        }
    }

    fn decimal(&self) -> Option<Decimal> {
        match self {
            Self::Text(s) => parse_decimal(s),
            Self::Int(i) => Some(Decimal::from(*i)),
            Self::UInt(u) => Some(Decimal::from(*u)),
            Self::Float(_) => parse_decimal(&self.number_text()?),
            _ => None,
        }
    }

    fn integer(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::UInt(u) => i64::try_from(*u).ok(),
            Self::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
        .or_else(|| {
            self.decimal()
                .filter(|d| d.fract().is_zero())
                .and_then(|d| i64::try_from(d).ok())
        })
    }

    fn note_unreadable(&self, what: &str) {
        if !matches!(self, Self::Null) {
            tracing::debug!(
                kind = self.kind(),
                what,
                "ignored an unreadable Alpaca value"
            );
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

/// The items of an array, each read by `read`; anything else is empty.
fn items<'de, D, T>(d: D, read: fn(Scalar<'de>) -> Option<T>) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
{
    struct Items<'de, T>(fn(Scalar<'de>) -> Option<T>);

    impl<'de, T> Visitor<'de> for Items<'de, T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(item) = seq.next_element::<Scalar<'de>>()? {
                out.extend((self.0)(item));
            }
            Ok(out)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }
    }

    d.deserialize_any(Items(read))
}

/// A decimal given as a string or a number; `null`, `""` or anything else is `None`.
pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let value = Scalar::deserialize(d)?;
    let parsed = value.decimal();
    if parsed.is_none() {
        value.note_unreadable("decimal");
    }
    Ok(parsed)
}

/// An integer given as a number or a string (`0`, `"0"`, `0.0`); else `None`.
pub fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = Scalar::deserialize(d)?;
    let parsed = value.integer();
    if parsed.is_none() {
        value.note_unreadable("integer");
    }
    Ok(parsed)
}

/// Text as sent; a number or boolean as its text; `null` and anything else `""`.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = Scalar::deserialize(d)?;
    Ok(match value {
        Scalar::Text(s) => s.into_owned(),
        Scalar::Bool(b) => b.to_string(),
        other => other.number_text().unwrap_or_default(),
    })
}

/// `true`/`false`, also as the strings `"true"`/`"false"`; anything else `false`.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Scalar::deserialize(d)? {
        Scalar::Bool(b) => b,
        Scalar::Text(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// An RFC 3339 time; a bare date (`2019-08-01`) is midnight UTC; else `None`.
pub fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
    let value = Scalar::deserialize(d)?;
    let parsed = match &value {
        Scalar::Text(s) => parse_time(s),
        _ => None,
    };
    if parsed.is_none() {
        value.note_unreadable("time");
    }
    Ok(parsed)
}

/// Parses RFC 3339, or a bare `YYYY-MM-DD` as midnight UTC.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        Date::parse(text, &format)
            .ok()
            .map(|date| date.midnight().assume_utc())
    })
}

/// A UUID; `""` (as multi-leg orders send for `asset_id`) or anything else is `None`.
pub fn uuid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    Ok(match Scalar::deserialize(d)? {
        Scalar::Text(s) => Uuid::parse_str(s.trim()).ok(),
        _ => None,
    })
}

/// An array of decimals (`null` items stay `None`); a missing or `null` array is empty.
pub fn decimals<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<Decimal>>, D::Error> {
    items(d, |item| Some(item.decimal()))
}

/// An array of integers given as numbers or strings; unreadable items are `None`.
pub fn integers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<i64>>, D::Error> {
    items(d, |item| {
        Some(match item {
            Scalar::Int(i) => Some(i),
            Scalar::UInt(u) => i64::try_from(u).ok(),
            Scalar::Text(s) => s.trim().parse().ok(),
            _ => None,
        })
    })
}

/// An array of strings; anything else is empty.
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    items(d, |item| match item {
        Scalar::Text(s) => Some(s.into_owned()),
        _ => None,
    })
}

/// A list of `T`; `null` or a missing list is empty, and an item that is not
/// even an object is left out (logged) rather than failing the whole body.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter(Value::is_object)
            .filter_map(|item| match serde_json::from_value(item) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(error = %e, "left out an unreadable Alpaca list item");
                    None
                }
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// Serializes decimals as strings, which Alpaca accepts everywhere.
pub mod as_text {
    use rust_decimal::Decimal;
    use serde::Serializer;

    /// An optional decimal as a JSON string (only call when `Some`, with
    /// `skip_serializing_if = "Option::is_none"`).
    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "decimal")]
        d: Option<Decimal>,
        #[serde(default, deserialize_with = "integer")]
        i: Option<i64>,
        #[serde(default, deserialize_with = "string")]
        s: String,
        #[serde(default, deserialize_with = "boolean")]
        b: bool,
        #[serde(default, deserialize_with = "time")]
        t: Option<OffsetDateTime>,
        #[serde(default, deserialize_with = "uuid")]
        u: Option<Uuid>,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).expect("lenient fields never fail")
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    #[test]
    fn decimals_come_as_strings_numbers_or_scientific_and_keep_their_digits() {
        assert_eq!(
            probe(r#"{"d":"1.50"}"#).d.map(|v| v.to_string()),
            Some("1.50".into())
        );
        assert_eq!(probe(r#"{"d":100234.56}"#).d, Some(d("100234.56")));
        assert_eq!(probe(r#"{"d":0.1}"#).d, Some(d("0.1")), "no binary error");
        assert_eq!(probe(r#"{"d":7}"#).d, Some(d("7")));
        assert_eq!(probe(r#"{"d":"1e-7"}"#).d, Some(d("0.0000001")));
        assert_eq!(probe(r#"{"d":" -23140.2 "}"#).d, Some(d("-23140.2")));
    }

    #[test]
    fn unusable_values_become_unknown_instead_of_failing() {
        for body in [
            r#"{"d":null}"#,
            r#"{"d":""}"#,
            r#"{"d":"n/a"}"#,
            r#"{"d":true}"#,
            r#"{"d":{"amount":"1"}}"#,
            r#"{"d":[1]}"#,
            r#"{}"#,
        ] {
            assert_eq!(probe(body).d, None, "{body}");
        }
    }

    #[test]
    fn integers_come_as_numbers_or_strings() {
        assert_eq!(probe(r#"{"i":0}"#).i, Some(0));
        assert_eq!(probe(r#"{"i":"0"}"#).i, Some(0));
        assert_eq!(probe(r#"{"i":"3"}"#).i, Some(3));
        assert_eq!(probe(r#"{"i":2.0}"#).i, Some(2));
        assert_eq!(probe(r#"{"i":2.5}"#).i, None);
        assert_eq!(probe(r#"{"i":"many"}"#).i, None);
    }

    #[test]
    fn strings_booleans_times_and_ids_are_lenient_too() {
        let p = probe(r#"{"s":42,"b":"true","t":"2019-08-01","u":""}"#);
        assert_eq!(p.s, "42");
        assert!(p.b);
        assert_eq!(p.t.map(|t| t.unix_timestamp()), Some(1_564_617_600));
        assert_eq!(p.u, None);
        let p = probe(
            r#"{"s":null,"b":"yes","t":"2024-01-02T09:30:00.123456789-05:00","u":"904837e3-3b76-47ec-b432-046db621571b"}"#,
        );
        assert_eq!(p.s, "");
        assert!(!p.b);
        assert_eq!(p.t.map(|t| t.unix_timestamp()), Some(1_704_205_800));
        assert!(p.u.is_some());
        assert_eq!(probe(r#"{"t":"yesterday"}"#).t, None);
    }
}
