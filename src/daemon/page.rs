//! The status page's content (`/` on `daemon.listen`): the snapshot `status` reads
//! (without each feed's history of new items, a read per feed), and the latest
//! alerts, put in words for [`StatusPage`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::snapshot::{FeedReport, RuleReport, Snapshot, reports_of};
use crate::config::Config;
use crate::config::Feed;
use crate::model::FeedId;
use crate::render::safe_link;
use crate::render::status::{
    AlertRow, DeadRow, FeedRow, FeedsShown, InstanceRow, QueueRow, RetryRow, RuleRow, StatusPage,
    bars, when,
};
use crate::store::{FeedState, Store, StoreError};

/// How many of the retries and of the dead letters the page lists (it counts them
/// all), as many as the latest alerts.
const LATEST: usize = super::snapshot::LATEST_ALERTS;

/// Rules the status page shows at most, each with its chart.
const RULES_SHOWN: usize = 100;

/// Feeds listed on one page of the status page.
pub(super) const FEEDS_PER_PAGE: usize = 100;

/// Page `page` (counted from 1) of the page for the running `config`, read from
/// `store` at `now`: the feeds failing first, then those never polled, then the rest,
/// each in config order, [`FEEDS_PER_PAGE`] at a time.
pub(super) async fn status_page(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    page: usize,
) -> Result<StatusPage, StoreError> {
    let (mut snapshot, stored) = Snapshot::read_stored(store, now).await?;
    let recent = std::mem::take(&mut snapshot.recent);
    // Only the page's feeds are put in words: with 100,000 feeds, building a report
    // for each took longer than the page may. The others are only ranked.
    let index: HashMap<&str, usize> = stored
        .iter()
        .enumerate()
        .map(|(i, (id, ..))| (id.0.as_str(), i))
        .collect();
    let state_of = |id: &FeedId| {
        let (_, state, items) = &stored[*index.get(id.0.as_str())?];
        Some((state, *items))
    };
    let never_polled = FeedState::default();
    let mut ranked: Vec<(u8, &Feed, &FeedState)> = config
        .feeds
        .iter()
        .map(|feed| {
            let state = state_of(&feed.id).map_or(&never_polled, |(state, _)| state);
            let rank = match health(state).1 {
                "bad" => 0,
                "new" => 1,
                _ => 2,
            };
            (rank, feed, state)
        })
        .collect();
    // Stable: each class stays in config order.
    ranked.sort_by_key(|(rank, ..)| *rank);
    let failing = ranked.iter().take_while(|(rank, ..)| *rank == 0).count();
    let broken = ranked
        .iter()
        .filter(|(.., state)| state.broken_since.is_some())
        .count();
    let (shown, feeds_shown) = one_page(&ranked, page);
    let shown: Vec<&Feed> = shown.iter().map(|(_, feed, _)| *feed).collect();
    let feeds: Vec<FeedRow> = reports_of(config, &shown, state_of, now)
        .iter()
        .map(|f| feed_row(f, now))
        .collect();
    let counts = &snapshot.outbox;
    Ok(StatusPage {
        generated: now.format("%Y-%m-%d %H:%M UTC").to_string(),
        refused: snapshot
            .refused
            .as_ref()
            .map(|(why, at)| format!("{why} ({})", when(Some(*at), now))),
        broken,
        failing,
        feeds,
        feeds_shown,
        queue: QueueRow {
            pending: counts.pending,
            sending: counts.sending,
            sent: counts.sent,
            dead: counts.dead,
            held: counts.held,
        },
        retrying_count: snapshot.retrying.len(),
        retrying: snapshot
            .retrying
            .iter()
            .take(LATEST)
            .map(|r| RetryRow {
                channel: r.channel.clone(),
                attempts: r.attempts,
                next: when(Some(r.next_attempt), now),
                error: r.last_error.clone(),
            })
            .collect(),
        dead: snapshot
            .dead
            .iter()
            .take(LATEST)
            .map(|(id, channel, error)| DeadRow {
                id: *id,
                channel: channel.clone(),
                error: error.clone(),
            })
            .collect(),
        instances: snapshot
            .instances
            .iter()
            .map(|i| InstanceRow {
                name: i.name.clone(),
                heartbeat: when(Some(i.heartbeat), now),
                polling: i.polling,
                delivering: i.delivering,
            })
            .collect(),
        configs_differ: snapshot.configs_differ(config),
        rules_total: config.rule_specs.len(),
        rules: rules_shown(snapshot.rules(config, now))
            .into_iter()
            .map(|r| RuleRow {
                bars: bars(
                    &r.days
                        .iter()
                        .map(|(d, n)| (d.to_string(), *n))
                        .collect::<Vec<_>>(),
                ),
                caught: r.caught,
                dead: r.possibly_dead(),
                feedback: r.feedback(),
                hint: r.hint().map(str::to_owned),
                last: r
                    .last
                    .as_ref()
                    .map(|(title, at)| format!("{title} ({})", when(Some(*at), now))),
                name: r.rule,
            })
            .collect(),
        recent: recent
            .into_iter()
            .map(|r| AlertRow {
                score: r.alert.score().map(|s| format!("{s:.2}")),
                when: when(Some(r.created), now),
                href: safe_link(r.alert.link.as_deref()),
                channel: r.channel,
                state: r.state,
                also: r.alert.also_in.len(),
                feed: r.alert.feed.0,
                title: r.alert.title,
                rules: r.alert.rules,
            })
            .collect(),
        unavailable: None,
        state: snapshot.state_line(now),
    })
}

/// The page when the state cannot be read (`why`): a banner that says so.
pub(super) fn unavailable_page(why: String, now: DateTime<Utc>) -> StatusPage {
    StatusPage {
        generated: now.format("%Y-%m-%d %H:%M UTC").to_string(),
        unavailable: Some(why),
        ..StatusPage::default()
    }
}

/// The rules the page shows: those that need a look first, then the others, each in
/// config order, [`RULES_SHOWN`] at most (`status --json` lists them all).
fn rules_shown(mut rules: Vec<RuleReport>) -> Vec<RuleReport> {
    rules.sort_by_key(|r| !r.needs_a_look());
    rules.truncate(RULES_SHOWN);
    rules
}

/// Page `page` of `feeds` (the last one when it is past the end), and which it is.
fn one_page<T>(feeds: &[T], page: usize) -> (&[T], FeedsShown) {
    let total = feeds.len();
    let pages = total.div_ceil(FEEDS_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let first = (page - 1) * FEEDS_PER_PAGE;
    let shown = &feeds[first.min(total)..(first + FEEDS_PER_PAGE).min(total)];
    let range = FeedsShown {
        first: first + 1,
        last: first + shown.len(),
        total,
        previous: (page > 1).then(|| page - 1),
        next: (page < pages).then(|| page + 1),
    };
    (shown, range)
}

/// A feed's health in a word, and its class on the page: `bad`, `new` or `ok`.
fn health(state: &crate::store::FeedState) -> (&str, &'static str) {
    match (
        &state.last_attempt,
        &state.broken_since,
        &state.last_error_kind,
    ) {
        (None, _, _) => ("never polled", "new"),
        (Some(_), Some(_), _) => ("broken", "bad"),
        (Some(_), None, Some(kind)) => (kind, "bad"),
        (Some(_), None, None) => ("ok", "ok"),
    }
}

fn feed_row(feed: &FeedReport, now: DateTime<Utc>) -> FeedRow {
    let state = &feed.state;
    let (health, class) = health(state);
    let health = health.to_owned();
    FeedRow {
        name: feed.id.0.clone(),
        url: feed.source.clone().unwrap_or_default(),
        health,
        class,
        last_poll: when(state.last_attempt, now),
        last_success: when(state.last_success, now),
        next_poll: when(feed.next_poll, now),
        last_error: state.last_error.clone(),
        items: feed.items_known,
        gaps: state.gaps,
        dropped: state.dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, caught: u64, not: u64) -> RuleReport {
        RuleReport {
            rule: name.into(),
            days: Vec::new(),
            caught,
            last: None,
            more: 0,
            not,
            by_words: true,
        }
    }

    #[test]
    fn the_page_shows_the_rules_that_need_a_look_first_and_at_most_a_hundred() {
        let mut rules: Vec<RuleReport> = (0..150).map(|i| rule(&format!("r{i}"), 1, 0)).collect();
        rules[120] = rule("dead", 0, 0);
        rules[130] = rule("narrow me", 4, 1);
        let shown = rules_shown(rules);
        let names: Vec<&str> = shown.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(names.len(), RULES_SHOWN);
        assert_eq!(&names[..4], ["dead", "narrow me", "r0", "r1"]);
    }
}
