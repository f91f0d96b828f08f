//! US/Eastern time (where US equity markets keep their hours) without a time
//! zone database: Eastern Standard Time is UTC−5, and daylight time (UTC−4)
//! runs from the second Sunday of March at 2:00 local to the first Sunday of
//! November at 2:00 local, the rule in force since 2007.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

const EST: i8 = -5;
const EDT: i8 = -4;

/// The `n`-th Sunday (1-based) of `month` in `year`.
fn nth_sunday(year: i32, month: Month, n: u8) -> Option<Date> {
    let first = Date::from_calendar_date(year, month, 1).ok()?;
    let to_sunday = (7 - first.weekday().number_days_from_sunday()) % 7;
    first.checked_add(time::Duration::days(
        i64::from(to_sunday) + 7 * (i64::from(n) - 1),
    ))
}

/// The UTC offset of US/Eastern at `at`.
pub fn offset_at(at: OffsetDateTime) -> UtcOffset {
    let utc = at.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let (Some(start), Some(end)) = (
        nth_sunday(year, Month::March, 2),
        nth_sunday(year, Month::November, 1),
    ) else {
        return hours(EST);
    };
    // 2:00 EST is 07:00 UTC; 2:00 EDT is 06:00 UTC.
    let starts = PrimitiveDateTime::new(start, Time::from_hms(7, 0, 0).unwrap_or(Time::MIDNIGHT))
        .assume_utc();
    let ends =
        PrimitiveDateTime::new(end, Time::from_hms(6, 0, 0).unwrap_or(Time::MIDNIGHT)).assume_utc();
    if utc >= starts && utc < ends {
        hours(EDT)
    } else {
        hours(EST)
    }
}

fn hours(h: i8) -> UtcOffset {
    UtcOffset::from_hms(h, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// `at` as US/Eastern wall-clock time.
pub fn to_eastern(at: OffsetDateTime) -> OffsetDateTime {
    at.to_offset(offset_at(at))
}

/// An Eastern wall-clock time on `date` as an instant.
pub fn eastern_instant(date: Date, time: Time) -> OffsetDateTime {
    let guess = PrimitiveDateTime::new(date, time).assume_offset(hours(EST));
    PrimitiveDateTime::new(date, time).assume_offset(offset_at(guess))
}

/// Whether `date` is a weekday (the simulator's market has no holidays).
pub fn is_weekday(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// `Mon Dec 1, 9:30 AM ET`.
pub fn describe(at: OffsetDateTime) -> String {
    let local = to_eastern(at);
    let (hour, minute) = (local.hour(), local.minute());
    let (h12, half) = match hour {
        0 => (12, "AM"),
        1..=11 => (hour, "AM"),
        12 => (12, "PM"),
        _ => (hour - 12, "PM"),
    };
    let weekday = &local.weekday().to_string()[..3];
    let month = &local.month().to_string()[..3];
    format!(
        "{weekday} {month} {}, {h12}:{minute:02} {half} ET",
        local.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn daylight_time_follows_the_us_rule() {
        assert_eq!(offset_at(datetime!(2026-01-15 12:00 UTC)).whole_hours(), -5);
        assert_eq!(offset_at(datetime!(2026-07-01 12:00 UTC)).whole_hours(), -4);
        // 2026: DST from Sunday 8 March 07:00 UTC to Sunday 1 November 06:00 UTC.
        assert_eq!(offset_at(datetime!(2026-03-08 06:59 UTC)).whole_hours(), -5);
        assert_eq!(offset_at(datetime!(2026-03-08 07:00 UTC)).whole_hours(), -4);
        assert_eq!(offset_at(datetime!(2026-11-01 05:59 UTC)).whole_hours(), -4);
        assert_eq!(offset_at(datetime!(2026-11-01 06:00 UTC)).whole_hours(), -5);
    }

    #[test]
    fn times_read_as_eastern_wall_clock() {
        assert_eq!(
            describe(datetime!(2026-12-01 14:30 UTC)),
            "Tue Dec 1, 9:30 AM ET"
        );
        assert_eq!(
            describe(datetime!(2026-07-02 20:00 UTC)),
            "Thu Jul 2, 4:00 PM ET"
        );
        let open = eastern_instant(
            time::macros::date!(2026 - 07 - 02),
            time::macros::time!(9:30),
        );
        assert_eq!(open, datetime!(2026-07-02 13:30 UTC));
    }
}
