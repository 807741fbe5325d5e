//! The status page served at `/` on `daemon.listen`: the feeds' health, the latest
//! alerts and the queue, as server-rendered HTML (no script) that reads on a phone.
//! Every value is escaped by the template engine (the template is HTML).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde::Serialize;

const TEMPLATE: &str = "status.html";
const FEEDBACK: &str = "feedback.html";

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // A `.html` name turns escaping on for every value.
    env.add_template(TEMPLATE, include_str!("status.html"))
        .expect("the status page template compiles (tested)");
    env.add_template(FEEDBACK, include_str!("feedback.html"))
        .expect("the feedback page template compiles (tested)");
    env
});

/// Which of the feeds a page of the status page lists.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FeedsShown {
    pub first: usize,
    pub last: usize,
    pub total: usize,
    pub previous: Option<usize>,
    pub next: Option<usize>,
}

/// What the status page shows, already in words.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusPage {
    /// When the page was made (`2026-12-05 21:50 UTC`).
    pub generated: String,
    /// A config change the daemon refused, and when.
    pub refused: Option<String>,
    /// Why the state could not be read: the page is then this banner alone.
    pub unavailable: Option<String>,
    /// How much the state holds, and its last pruning: `12345 seen items, 3.4 MB on
    /// disk; last pruned 5 min ago: nothing expired`.
    pub state: String,
    /// One page of the feeds, those failing first.
    pub feeds: Vec<FeedRow>,
    /// Which page of feeds this is: the first and last shown (counted from 1), of
    /// how many, and the pages before and after it, when there are.
    pub feeds_shown: FeedsShown,
    /// How many feeds are broken and failing.
    pub broken: usize,
    pub failing: usize,
    pub queue: QueueRow,
    /// How many alerts wait for a retry; the soonest are listed.
    pub retrying_count: usize,
    pub retrying: Vec<RetryRow>,
    /// The latest dead letters (`queue.dead` counts them all).
    pub dead: Vec<DeadRow>,
    pub recent: Vec<AlertRow>,
    /// What each rule caught over the last 30 days: those that need a look first, at
    /// most 100 of them.
    pub rules: Vec<RuleRow>,
    /// How many rules the config has.
    pub rules_total: usize,
    /// The instances sharing a `[store]` database (none with the embedded store).
    pub instances: Vec<InstanceRow>,
    /// Whether they run different configs.
    pub configs_differ: bool,
}

/// One rule on the status page: a bar per day of what it caught, its last catch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleRow {
    pub name: String,
    /// How many items it caught in the days shown.
    pub caught: u64,
    pub bars: Vec<Bar>,
    /// The last item caught, and when: `Title (3 h ago)`.
    pub last: Option<String>,
    /// It caught nothing in all the days shown.
    pub dead: bool,
    /// What feedback said of its alerts: `2 more like this, 1 not this`.
    pub feedback: Option<String>,
    /// What to do about that feedback, when the rule cannot learn from it.
    pub hint: Option<String>,
}

/// One day's bar of a rule's chart, placed in its SVG ([`CHART_HEIGHT`] high).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    /// `2026-12-07: 3 caught`.
    pub label: String,
}

/// The height of a rule's chart, in pixels; each day takes `BAR_STEP` of its width.
pub const CHART_HEIGHT: u32 = 24;
const BAR_STEP: u32 = 5;

/// The bars of a chart of `days` (label, count), oldest first: heights scaled to the
/// busiest day, at least a pixel for a day with anything; no bar for an empty day.
pub fn bars(days: &[(String, u64)]) -> Vec<Bar> {
    let most = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    days.iter()
        .zip(0..)
        .filter(|((_, n), _)| *n > 0)
        .map(|((day, n), i)| {
            let height = ((n * u64::from(CHART_HEIGHT)).div_ceil(most) as u32).max(1);
            Bar {
                x: i * BAR_STEP,
                y: CHART_HEIGHT - height,
                height,
                label: format!("{day}: {n} caught"),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InstanceRow {
    pub name: String,
    pub heartbeat: String,
    pub polling: u64,
    pub delivering: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedRow {
    pub name: String,
    pub url: String,
    /// `ok`, `broken`, `never polled`, or the last error's kind (`timeout`, …).
    pub health: String,
    /// `ok`, `bad` or `new`: how the health is coloured.
    pub class: &'static str,
    pub last_poll: String,
    pub last_success: String,
    pub next_poll: String,
    pub last_error: Option<String>,
    pub items: u64,
    /// Polls that found it had published more than it keeps since the last.
    pub gaps: u64,
    /// Items filters dropped, in all.
    pub dropped: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueRow {
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub dead: u64,
    pub held: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetryRow {
    pub channel: String,
    pub attempts: u32,
    pub next: String,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadRow {
    pub id: i64,
    pub channel: String,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AlertRow {
    pub when: String,
    pub channel: String,
    pub state: String,
    pub feed: String,
    pub title: String,
    /// The story's link when it is a web link (only those are made clickable).
    pub href: Option<String>,
    pub rules: Vec<String>,
    /// A topic rule's score (`0.61`), when one matched.
    pub score: Option<String>,
    /// How many other feeds carried the story (merged into this alert).
    pub also: usize,
}

/// The page a feedback link opens: what the click would do, with the one button that
/// does it (`query` set), or what it did, or why the link is refused.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedbackPage {
    pub heading: String,
    pub message: String,
    /// The link's signed query, sent back by the button's POST.
    pub query: Option<String>,
    pub button: String,
}

impl FeedbackPage {
    pub fn render(&self) -> Result<String, minijinja::Error> {
        ENV.get_template(FEEDBACK)?
            .render(minijinja::Value::from(minijinja::value::Serde(self)))
    }
}

impl StatusPage {
    pub fn render(&self) -> Result<String, minijinja::Error> {
        ENV.get_template(TEMPLATE)?
            .render(minijinja::Value::from(minijinja::value::Serde(self)))
    }
}

/// A size in bytes as people read it: `512 B`, `3.4 kB`, `12.0 MB`, `1.2 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 3] = ["kB", "MB", "GB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let (mut size, mut unit) = (n as f64 / 1000.0, 0);
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

/// A time for the page, short enough for a phone: `3 min ago`, `in 5 min`, `now`,
/// or `—` (the page says when it was made).
pub fn when(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "—".to_owned();
    };
    let seconds = (at - now).num_seconds();
    let span = |s: i64| match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    };
    match seconds {
        0 => "now".to_owned(),
        ..0 => format!("{} ago", span(-seconds)),
        _ => format!("in {}", span(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_970_000 + secs, 0).expect("time")
    }

    #[test]
    fn an_alert_of_a_topic_rule_shows_its_score() {
        let page = StatusPage {
            recent: vec![AlertRow {
                title: "Kremlin wants written answers".into(),
                rules: vec!["security-talks".into()],
                score: Some("0.63".into()),
                ..AlertRow::default()
            }],
            ..StatusPage::default()
        };
        let html = page.render().expect("renders");
        assert!(
            html.contains("security-talks<br><span class=\"muted\">by meaning, 0.63</span>"),
            "{html}"
        );
    }

    #[test]
    fn a_rules_chart_scales_its_bars_and_escapes_its_name() {
        let days: Vec<(String, u64)> = [0, 4, 0, 1, 2]
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("2026-12-0{}", i + 1), *n))
            .collect();
        let drawn = bars(&days);
        let heights: Vec<(u32, u32, u32)> = drawn.iter().map(|b| (b.x, b.y, b.height)).collect();
        assert_eq!(heights, [(5, 0, 24), (15, 18, 6), (20, 12, 12)]);
        assert_eq!(drawn[0].label, "2026-12-02: 4 caught");
        let hostile = "<script>alert(1)</script>\"><svg onload=x>";
        let page = StatusPage {
            rules: vec![
                RuleRow {
                    name: hostile.into(),
                    caught: 7,
                    bars: drawn,
                    last: Some("<b>Lavrov</b> (2 h ago)".into()),
                    dead: false,
                    feedback: Some("1 not this".into()),
                    hint: Some("narrow <it>".into()),
                },
                RuleRow {
                    name: "quiet".into(),
                    dead: true,
                    ..RuleRow::default()
                },
            ],
            ..StatusPage::default()
        };
        let html = page.render().expect("renders");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<svg onload"), "{html}");
        assert!(
            html.contains("<title>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&gt;&lt;svg onload=x&gt;: 7 caught in 30 days</title>"),
            "{html}"
        );
        assert!(
            html.contains("<rect x=\"5\" y=\"0\" width=\"4\" height=\"24\""),
            "{html}"
        );
        assert!(
            html.contains("&lt;b&gt;Lavrov&lt;&#x2f;b&gt; (2 h ago)"),
            "{html}"
        );
        assert!(
            html.contains("quiet<br><span class=\"badge bad\">possibly dead</span>"),
            "{html}"
        );
    }

    #[test]
    fn times_say_how_long_ago_or_until() {
        assert_eq!(when(None, at(0)), "—");
        assert_eq!(when(Some(at(-190)), at(0)), "3 min ago");
        assert_eq!(when(Some(at(7200)), at(0)), "in 2 h");
        assert_eq!(when(Some(at(0)), at(0)), "now");
        assert_eq!(when(Some(at(45)), at(0)), "in 45 s");
        assert_eq!(when(Some(at(-3 * 86_400)), at(0)), "3 d ago");
    }

    #[test]
    fn long_lists_say_how_much_of_them_is_shown() {
        let page = StatusPage {
            queue: QueueRow {
                dead: 40,
                ..QueueRow::default()
            },
            retrying_count: 30,
            retrying: vec![RetryRow::default(); 25],
            dead: vec![DeadRow::default(); 25],
            ..StatusPage::default()
        };
        let html = page.render().expect("renders");
        assert!(html.contains("<b>30</b> retrying"), "{html}");
        assert!(html.contains("The 25 soonest of 30."), "{html}");
        assert!(html.contains("The latest 25 of 40."), "{html}");
        assert!(!html.contains("Instances"), "an embedded store has none");
    }

    #[test]
    fn instances_sharing_a_database_are_listed_and_a_config_mismatch_said() {
        let page = StatusPage {
            instances: vec![InstanceRow {
                name: "host-a-41".into(),
                heartbeat: "12 s ago".into(),
                polling: 3,
                delivering: 1,
            }],
            configs_differ: true,
            ..StatusPage::default()
        };
        let html = page.render().expect("renders");
        assert!(
            html.contains("<td>host-a-41</td><td>12 s ago</td><td>3</td><td>1</td>"),
            "{html}"
        );
        assert!(html.contains("run different configs"), "{html}");
    }

    #[test]
    fn every_value_is_escaped_and_only_web_links_are_clickable() {
        let page = StatusPage {
            feeds: vec![FeedRow {
                name: "<script>alert(1)</script>".into(),
                health: "ok".into(),
                class: "ok",
                last_error: Some("\"><img src=x onerror=alert(1)>".into()),
                ..FeedRow::default()
            }],
            recent: vec![AlertRow {
                title: "Lavrov & <b>Blinken</b>".into(),
                href: Some("https://news.example.org/?a=1&b=\"2\"".into()),
                rules: vec!["talks".into()],
                ..AlertRow::default()
            }],
            ..StatusPage::default()
        };
        let html = page.render().expect("renders");
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(
            html.contains("Lavrov &amp; &lt;b&gt;Blinken&lt;&#x2f;b&gt;"),
            "{html}"
        );
        assert!(
            html.contains(
                "href=\"https:&#x2f;&#x2f;news.example.org&#x2f;?a=1&amp;b=&quot;2&quot;\""
            ),
            "{html}"
        );
        assert!(!html.contains("<script"), "no script of ours either");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3_400), "3.4 kB");
        assert_eq!(bytes(12_000_000), "12.0 MB");
        assert_eq!(bytes(4_500_000_000_000), "4500.0 GB");
    }
}
