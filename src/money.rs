//! Money and numbers as people read them: `$1,234.56`, `-$1,234.56`, `+1.23%`.

use rust_decimal::{Decimal, RoundingStrategy};

fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `$1,234.56`, or `-$1,234.56` for negative amounts (rounded half away from zero).
pub fn money(amount: Decimal) -> String {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "-"
    } else {
        ""
    };
    let text = format!("{:.2}", rounded.abs());
    let (whole, cents) = text.split_once('.').unwrap_or((&text, "00"));
    format!("{sign}${}.{cents}", group(whole))
}

/// Like [`money`], but keeping every decimal beyond the cents (`$0.1234`,
/// `$2,630.955`): for prices, which Alpaca quotes below a cent.
pub fn money_exact(amount: Decimal) -> String {
    let n = amount.normalize();
    if n.scale() <= 2 {
        return money(n);
    }
    let sign = if n.is_sign_negative() { "-" } else { "" };
    let text = n.abs().to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    format!("{sign}${}.{fraction}", group(whole))
}

/// Like [`money`] but with an explicit `+` for gains: `+$12.00`.
pub fn signed_money(amount: Decimal) -> String {
    let text = money(amount);
    if text.starts_with('-') || amount.round_dp(2).is_zero() {
        text
    } else {
        format!("+{text}")
    }
}

/// `+1.23%` / `-1.23%` / `0.00%`.
pub fn percent(value: Decimal) -> String {
    let rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    if rounded.is_zero() {
        "0.00%".into()
    } else if rounded.is_sign_negative() {
        format!("-{:.2}%", rounded.abs())
    } else {
        format!("+{rounded:.2}%")
    }
}

/// The CSS class that marks a value's sign (`neg`, `pos` or none).
pub fn sign_class(value: Decimal) -> &'static str {
    let rounded = value.round_dp(2);
    if rounded.is_zero() {
        ""
    } else if rounded.is_sign_negative() {
        "neg"
    } else {
        "pos"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    #[test]
    fn money_matches_the_spec() {
        assert_eq!(money(d("1234.56")), "$1,234.56");
        assert_eq!(money(d("-1234.56")), "-$1,234.56");
        assert_eq!(money(d("0")), "$0.00");
        assert_eq!(money(d("-0.001")), "$0.00");
        assert_eq!(money(d("999.995")), "$1,000.00");
        assert_eq!(money(d("1234567.8")), "$1,234,567.80");
        assert_eq!(money(d("12")), "$12.00");
        assert_eq!(money(d("100000")), "$100,000.00");
    }

    #[test]
    fn exact_prices_keep_their_sub_cent_digits() {
        assert_eq!(money_exact(d("0.1234")), "$0.1234");
        assert_eq!(money_exact(d("2630.955")), "$2,630.955");
        assert_eq!(money_exact(d("174.78")), "$174.78");
        assert_eq!(money_exact(d("12.5")), "$12.50");
    }

    #[test]
    fn signs_are_visible_without_colour() {
        assert_eq!(signed_money(d("12")), "+$12.00");
        assert_eq!(signed_money(d("-12")), "-$12.00");
        assert_eq!(percent(d("1.234")), "+1.23%");
        assert_eq!(percent(d("-0.5")), "-0.50%");
        assert_eq!(sign_class(d("-0.5")), "neg");
        assert_eq!(sign_class(d("0.001")), "");
    }
}
