//! What a dispatch pass does with the rows it claimed, decided before anything is
//! written: the messages to send now (one per alert, a digest per period, a summary
//! beyond a channel's rate limit), the rows that wait and until when, and the rows
//! nothing can send. The dispatcher gathers what the decisions need from the store
//! and applies the plan in one place.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tracing::info;

use crate::config::{Digest, QuietHours};
use crate::render::MessageKind;
use crate::store::OutboxRow;

/// One message to send: a single alert, or several folded into a digest or summary.
#[derive(Debug)]
pub(super) struct Send {
    pub channel: String,
    pub rows: Vec<OutboxRow>,
    pub kind: MessageKind,
}

/// Rows put back, untried, until a time: the end of their digest period or of quiet
/// hours, or a free slot in their channel's rate limit.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Wait {
    pub ids: Vec<i64>,
    pub until: DateTime<Utc>,
}

/// Rows given up on untried, with why: they become dead letters.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Dead {
    pub ids: Vec<i64>,
    pub error: String,
}

/// What to do with claimed rows. Every row ends up in exactly one of its lists.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub sends: Vec<Send>,
    pub waits: Vec<Wait>,
    pub dead: Vec<Dead>,
}

impl Plan {
    /// The rows of a channel that is no longer in the config: nothing can send them.
    pub(super) fn gone(&mut self, channel: &str, rows: &[OutboxRow]) {
        self.dead.push(Dead {
            ids: ids(rows),
            error: format!("channel {channel:?} is no longer in the config"),
        });
    }

    /// A channel's quiet hours: within them its rows wait for their end; after them,
    /// the rows queued during them go as one message. Gives back the rows to be sent
    /// as usual.
    pub(super) fn quiet(
        &mut self,
        channel: &str,
        quiet: QuietHours,
        rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
    ) -> Vec<OutboxRow> {
        if quiet.contains(now) {
            self.wait(&rows, quiet.end_after(now));
            return Vec::new();
        }
        let (held, rest): (Vec<OutboxRow>, Vec<OutboxRow>) =
            rows.into_iter().partition(|r| quiet.contains(r.created));
        if !held.is_empty() {
            self.sends.push(Send {
                channel: channel.to_owned(),
                rows: held,
                kind: MessageKind::Digest {
                    period: format!("quiet hours {quiet}"),
                },
            });
        }
        rest
    }

    /// A digest channel's rows: those whose period has ended go as one message, the
    /// others wait for the end of the period they were queued in (one wait per
    /// period, not per row).
    pub(super) fn digest(
        &mut self,
        channel: &str,
        digest: Digest,
        rows: Vec<OutboxRow>,
        now: DateTime<Utc>,
    ) {
        let mut waiting: BTreeMap<DateTime<Utc>, Vec<i64>> = BTreeMap::new();
        let mut ready = Vec::new();
        for row in rows {
            match digest.period_end(row.created) {
                end if end <= now => ready.push(row),
                end => waiting.entry(end).or_default().push(row.id),
            }
        }
        self.waits
            .extend(waiting.into_iter().map(|(until, ids)| Wait { ids, until }));
        if !ready.is_empty() {
            self.sends.push(Send {
                channel: channel.to_owned(),
                rows: ready,
                kind: MessageKind::Digest {
                    period: digest.to_string(),
                },
            });
        }
    }

    /// A rate-limited channel's rows, given the `budget` of messages it may still send
    /// this minute and when a slot frees up: one message each while the budget lasts,
    /// the excess folded into one summary, or all waiting when there is no budget.
    pub(super) fn limited(
        &mut self,
        channel: &str,
        limit: u32,
        mut rows: Vec<OutboxRow>,
        budget: usize,
        next_slot: DateTime<Utc>,
    ) {
        if budget == 0 {
            self.wait(&rows, next_slot);
            return;
        }
        if rows.len() <= budget {
            self.each(channel, rows);
            return;
        }
        // One slot is kept for a summary of everything beyond the others.
        let rest = rows.split_off(budget - 1);
        info!(
            channel,
            limit,
            folded = rest.len(),
            "rate limit reached; the excess goes as one summary"
        );
        self.each(channel, rows);
        self.sends.push(Send {
            channel: channel.to_owned(),
            rows: rest,
            kind: MessageKind::Summary { limit },
        });
    }

    /// One message per row.
    pub(super) fn each(&mut self, channel: &str, rows: Vec<OutboxRow>) {
        self.sends.extend(rows.into_iter().map(|row| Send {
            channel: channel.to_owned(),
            rows: vec![row],
            kind: MessageKind::Alert,
        }));
    }

    fn wait(&mut self, rows: &[OutboxRow], until: DateTime<Utc>) {
        self.waits.push(Wait {
            ids: ids(rows),
            until,
        });
    }
}

/// Whether one of a digest channel's rows is in a period that has ended.
pub(super) fn digest_due(digest: Digest, rows: &[OutboxRow], now: DateTime<Utc>) -> bool {
    rows.iter().any(|r| digest.period_end(r.created) <= now)
}

/// Claimed rows grouped by channel, channels in the order they first appear.
pub(super) fn by_channel(rows: Vec<OutboxRow>) -> Vec<(String, Vec<OutboxRow>)> {
    let mut by_channel: Vec<(String, Vec<OutboxRow>)> = Vec::new();
    for row in rows {
        match by_channel.iter_mut().find(|(c, _)| *c == row.channel) {
            Some((_, rows)) => rows.push(row),
            None => by_channel.push((row.channel.clone(), vec![row])),
        }
    }
    by_channel
}

pub(super) fn ids(rows: &[OutboxRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{Local, TimeZone};

    use super::*;
    use crate::model::{Alert, FeedId, ItemKey, Notice};

    fn row(id: i64, created: DateTime<Utc>) -> OutboxRow {
        OutboxRow {
            id,
            channel: "me".into(),
            alert: Alert::from(Notice {
                feed: FeedId("f".into()),
                key: ItemKey(format!("k{id}")),
                title: String::new(),
                link: None,
                rules: vec![],
                text: String::new(),
                at: created,
            }),
            attempts: 0,
            created,
        }
    }

    /// A time of 10 January 2024 on the local clock, as quiet hours and digests read
    /// it.
    fn local(hour: u32, minute: u32) -> DateTime<Utc> {
        Local
            .with_ymd_and_hms(2024, 1, 10, hour, minute, 0)
            .single()
            .expect("a local time")
            .to_utc()
    }

    /// Each message as (kind, row ids).
    fn sends(plan: &Plan) -> Vec<(MessageKind, Vec<i64>)> {
        plan.sends
            .iter()
            .map(|s| (s.kind.clone(), ids(&s.rows)))
            .collect()
    }

    fn night() -> QuietHours {
        QuietHours::parse("22:00-07:00").expect("quiet hours")
    }

    #[test]
    fn a_channel_gone_from_the_config_makes_dead_letters() {
        let mut plan = Plan::default();
        plan.gone("old", &[row(1, local(9, 0)), row(2, local(9, 0))]);
        assert_eq!(
            plan.dead,
            [Dead {
                ids: vec![1, 2],
                error: "channel \"old\" is no longer in the config".into(),
            }]
        );
        assert!(plan.sends.is_empty() && plan.waits.is_empty());
    }

    #[test]
    fn within_quiet_hours_everything_waits_for_their_end() {
        let mut plan = Plan::default();
        let rows = vec![row(1, local(21, 0)), row(2, local(23, 0))];
        let rest = plan.quiet("me", night(), rows, local(23, 30));
        assert!(rest.is_empty());
        assert!(plan.sends.is_empty());
        let end = night().end_after(local(23, 30));
        assert_eq!(end, local(7, 0) + chrono::Duration::days(1));
        assert_eq!(
            plan.waits,
            [Wait {
                ids: vec![1, 2],
                until: end
            }]
        );
    }

    #[test]
    fn after_quiet_hours_what_they_held_goes_as_one_message() {
        let mut plan = Plan::default();
        let rows = vec![
            row(1, local(2, 0)),
            row(2, local(8, 0)),
            row(3, local(6, 0)),
        ];
        let rest = plan.quiet("me", night(), rows, local(8, 30));
        assert_eq!(ids(&rest), [2], "given back to be sent as usual");
        let held = MessageKind::Digest {
            period: "quiet hours 22:00-07:00".into(),
        };
        assert_eq!(sends(&plan), [(held, vec![1, 3])]);
        assert!(plan.waits.is_empty());
    }

    #[test]
    fn a_digest_sends_ended_periods_and_holds_the_others_one_wait_per_period() {
        let hourly = Digest::Every(Duration::from_secs(3600));
        let mut plan = Plan::default();
        let rows = vec![
            row(1, local(8, 10)),
            row(2, local(9, 5)),
            row(3, local(8, 50)),
            row(4, local(9, 20)),
        ];
        assert!(digest_due(hourly, &rows, local(9, 30)));
        plan.digest("me", hourly, rows, local(9, 30));
        let digest = MessageKind::Digest {
            period: "every 1h".into(),
        };
        assert_eq!(sends(&plan), [(digest, vec![1, 3])]);
        assert_eq!(
            plan.waits,
            [Wait {
                ids: vec![2, 4],
                until: local(10, 0),
            }]
        );
    }

    #[test]
    fn a_digest_whose_period_has_not_ended_only_waits() {
        let hourly = Digest::Every(Duration::from_secs(3600));
        let rows = vec![row(1, local(9, 5))];
        assert!(!digest_due(hourly, &rows, local(9, 30)));
        let mut plan = Plan::default();
        plan.digest("me", hourly, rows, local(9, 30));
        assert!(plan.sends.is_empty());
        assert_eq!(
            plan.waits,
            [Wait {
                ids: vec![1],
                until: local(10, 0),
            }]
        );
    }

    #[test]
    fn a_rate_limit_sends_within_budget_folds_the_excess_and_waits_without_one() {
        let rows = |n: i64| (1..=n).map(|id| row(id, local(9, 0))).collect::<Vec<_>>();
        let next_slot = local(9, 1);
        let alert = |id: i64| (MessageKind::Alert, vec![id]);

        let mut within = Plan::default();
        within.limited("me", 5, rows(3), 3, next_slot);
        assert_eq!(sends(&within), [alert(1), alert(2), alert(3)]);

        let mut beyond = Plan::default();
        beyond.limited("me", 5, rows(6), 3, next_slot);
        let summary = (MessageKind::Summary { limit: 5 }, vec![3, 4, 5, 6]);
        assert_eq!(sends(&beyond), [alert(1), alert(2), summary]);
        assert!(beyond.waits.is_empty());

        let mut spent = Plan::default();
        spent.limited("me", 5, rows(2), 0, next_slot);
        assert!(spent.sends.is_empty());
        assert_eq!(
            spent.waits,
            [Wait {
                ids: vec![1, 2],
                until: next_slot,
            }]
        );
    }

    #[test]
    fn rows_are_grouped_by_channel_in_the_order_channels_first_appear() {
        let on = |id: i64, channel: &str| OutboxRow {
            channel: channel.into(),
            ..row(id, local(9, 0))
        };
        let grouped = by_channel(vec![on(1, "b"), on(2, "a"), on(3, "b")]);
        let grouped: Vec<(String, Vec<i64>)> = grouped
            .into_iter()
            .map(|(c, rows)| (c, ids(&rows)))
            .collect();
        assert_eq!(grouped, [("b".into(), vec![1, 3]), ("a".into(), vec![2])]);
    }
}
