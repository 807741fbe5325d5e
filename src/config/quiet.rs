//! Quiet hours: a daily window, in local time, in which a channel sends nothing; what
//! it held goes as one message when the window ends.

use std::fmt;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};

use super::Digest;

/// `quiet_hours = "22:00-07:00"`: from the first time of day to the second, over
/// midnight when the second is earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    pub fn parse(text: &str) -> Result<QuietHours, String> {
        let times = text.split_once('-').and_then(|(start, end)| {
            let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").ok();
            Some((time(start)?, time(end)?))
        });
        match times {
            Some((start, end)) if start != end => Ok(QuietHours { start, end }),
            Some(_) => Err(format!(
                "{text:?} is an empty window; give two different times"
            )),
            None => Err(format!(
                "{text:?} is not a window of the day; write it as HH:MM-HH:MM, like \"22:00-07:00\""
            )),
        }
    }

    /// Whether `t` falls in the window, by the system's local clock.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.contains_in(t, &chrono::Local)
    }

    pub fn contains_in<Tz: TimeZone>(&self, t: DateTime<Utc>, zone: &Tz) -> bool {
        let time = t.with_timezone(zone).time();
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// When the window holding `t` ends (the next end of the window after `t`).
    pub fn end_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.end_after_in(t, &chrono::Local)
    }

    pub fn end_after_in<Tz: TimeZone>(&self, t: DateTime<Utc>, zone: &Tz) -> DateTime<Utc> {
        Digest::Daily(self.end).period_end_in(t, zone)
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;

    use super::*;

    #[test]
    fn a_window_over_midnight_holds_the_night_and_ends_in_the_morning() {
        let zone = FixedOffset::east_opt(3600).expect("UTC+1");
        let at = |day: u32, h: u32, m: u32| {
            zone.with_ymd_and_hms(2026, 12, day, h, m, 0)
                .single()
                .expect("time")
                .with_timezone(&Utc)
        };
        let night = QuietHours::parse("22:00-07:00").expect("valid");
        assert_eq!(night.to_string(), "22:00-07:00");
        for (h, m, quiet) in [
            (21, 59, false),
            (22, 0, true),
            (3, 0, true),
            (6, 59, true),
            (7, 0, false),
        ] {
            assert_eq!(night.contains_in(at(5, h, m), &zone), quiet, "{h}:{m}");
        }
        assert_eq!(night.end_after_in(at(5, 23, 0), &zone), at(6, 7, 0));
        assert_eq!(night.end_after_in(at(6, 3, 0), &zone), at(6, 7, 0));
        let lunch = QuietHours::parse("12:00 - 13:30").expect("valid");
        assert!(
            lunch.contains_in(at(5, 12, 45), &zone) && !lunch.contains_in(at(5, 13, 30), &zone)
        );
        assert!(QuietHours::parse("22:00").is_err());
        assert!(QuietHours::parse("07:00-07:00").is_err());
    }
}
