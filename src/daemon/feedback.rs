//! Feedback links: made for the alerts of a channel with `feedback = true` as they are
//! delivered, and answered on `daemon.listen`. Opening a link (GET) shows what it
//! would do and changes nothing, so that mail scanners that follow links vote for
//! nobody; the one button on that page (a POST) records the vote.

use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::OnceCell;

use super::shared::Lasting;
use crate::config::Config;
use crate::model::feedback::item_of;
use crate::model::{Alert, Ballot, Feedback, LinkError, Vote};
use crate::render::status::FeedbackPage;
use crate::store::{Learned, OutboxRow, Store, StoreError};

/// The state's key for feedback links, read (or made, the first time) once.
pub(super) async fn key<'a>(
    store: &Store,
    cell: &'a OnceCell<Vec<u8>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<&'a [u8], StoreError> {
    let key = cell
        .get_or_try_init(|| async {
            let stored = store.feedback_key(fresh_key(), now).await?;
            Ok::<_, StoreError>(stored.into_bytes())
        })
        .await?;
    Ok(key)
}

/// 32 random bytes from the system's secure source, as hex.
fn fresh_key() -> String {
    let mut bytes = [0u8; 32];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .expect("the system's random source answers");
    crate::model::hex(&bytes)
}

/// The links of `row`'s alert, one pair per rule, under `base` (`daemon.public_url`),
/// as it is sent at `now`; each holds as long as the sent alert is kept (`keep`, the
/// config's `keep_sent`).
pub(super) fn links(
    base: &url::Url,
    key: &[u8],
    row: &OutboxRow,
    keep: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Feedback> {
    let keep = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
    let expires = now.timestamp().saturating_add(keep);
    let item = item_of(&row.alert.feed.0, &row.alert.key.0);
    let link = |rule: &str, vote: Vote| {
        let ballot = Ballot {
            alert: row.id,
            rule: rule.to_owned(),
            vote,
            expires,
            item: item.clone(),
        };
        format!(
            "{}/feedback?{}",
            base.as_str().trim_end_matches('/'),
            ballot.query(key)
        )
    };
    row.alert
        .rules
        .iter()
        .map(|rule| Feedback {
            rule: rule.clone(),
            more: link(rule, Vote::More),
            not: link(rule, Vote::Not),
        })
        .collect()
}

/// What a link's GET answers: what pressing the button would do.
pub(super) async fn confirm(
    lasting: &Lasting,
    config: &Config,
    query: &str,
) -> (StatusCode, FeedbackPage) {
    match checked(lasting, config, query).await {
        Ok((ballot, alert)) => {
            let (what, button) = match ballot.vote {
                Vote::More => ("more like", "More like this"),
                Vote::Not => ("not what", "Not this"),
            };
            let page = FeedbackPage {
                heading: format!("{button}?"),
                message: format!(
                    "Tell newshound that “{}” ({}) is {what} the rule “{}” should catch.",
                    alert.title, alert.feed, ballot.rule
                ),
                query: Some(query.to_owned()),
                button: button.to_owned(),
            };
            (StatusCode::OK, page)
        }
        Err(refused) => refused,
    }
}

/// What the button's POST answers, once the vote is recorded: the form's body holds
/// the link's query as `q`.
pub(super) async fn vote(
    lasting: &Lasting,
    config: &Config,
    body: &[u8],
) -> (StatusCode, FeedbackPage) {
    let query = url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "q")
        .map(|(_, q)| q.into_owned())
        .unwrap_or_default();
    let (ballot, alert) = match checked(lasting, config, &query).await {
        Ok(checked) => checked,
        Err(refused) => return refused,
    };
    let learned = Learned {
        rule: ballot.rule.clone(),
        feed: alert.feed.clone(),
        key: alert.key.clone(),
        alert: ballot.alert,
        vote: ballot.vote,
        text: alert.example(),
        at: lasting.clock.now(),
    };
    // Written even when this instance knows the vote: another one may have recorded
    // a later, other vote on the item that this one has not read yet.
    if let Err(e) = lasting.store.learn(learned.clone()).await {
        tracing::warn!(error = %e, "cannot record a feedback vote");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "newshound cannot record this now; try the link again later",
        );
    }
    tracing::info!(rule = %ballot.rule, vote = %ballot.vote, title = %alert.title, "feedback learned");
    // The same vote again (a second click) costs no rebuild.
    if !lasting.learning.knows(&learned) {
        lasting.learning.add(learned);
    }
    let taught = match ballot.vote {
        Vote::More => "an example of what it should catch",
        Vote::Not => "an example of what it should not catch",
    };
    let kind = if config
        .rule_specs
        .iter()
        .any(|r| r.name == ballot.rule && r.topic.is_some())
    {
        "It matches by meaning, and uses it from the next item on."
    } else {
        "It matches by words, so the example is shown on the status page, and exported by \
         `newshound rules --learned`, as a hint to change them."
    };
    let page = FeedbackPage {
        heading: "Thank you".into(),
        message: format!(
            "The rule “{}” keeps “{}” as {taught}. {kind}",
            ballot.rule, alert.title
        ),
        ..FeedbackPage::default()
    };
    (StatusCode::OK, page)
}

/// The ballot of `query` and its alert, or the page that refuses it: a link not
/// signed with the state's key (or changed), expired, of an alert no longer kept, or
/// of a rule no longer in the config.
async fn checked(
    lasting: &Lasting,
    config: &Config,
    query: &str,
) -> Result<(Ballot, Alert), (StatusCode, FeedbackPage)> {
    let now = lasting.clock.now();
    let store_down = |e: StoreError| {
        tracing::warn!(error = %e, "cannot read the state for a feedback link");
        refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "newshound cannot read its state now; try the link again later",
        )
    };
    let key = key(&lasting.store, &lasting.feedback_key, now)
        .await
        .map_err(store_down)?;
    let refused = |e: LinkError| match e {
        LinkError::Forged => refusal(StatusCode::FORBIDDEN, &format!("{e}.")),
        LinkError::Expired => refusal(
            StatusCode::GONE,
            &format!("{e}: the alert is older than daemon.keep_sent."),
        ),
    };
    let signed = Ballot::parse(query).map_err(refused)?;
    let stored = lasting.store.alert(signed.ballot.alert).await;
    let Some(alert) = stored.map_err(store_down)? else {
        return Err(match now.timestamp() > signed.ballot.expires {
            true => refused(LinkError::Expired),
            false => refusal(StatusCode::GONE, "That alert is no longer kept."),
        });
    };
    let item = item_of(&alert.feed.0, &alert.key.0);
    let ballot = signed.verify(key, &item, now).map_err(refused)?;
    if !config.rule_specs.iter().any(|r| r.name == ballot.rule) {
        return Err(refusal(
            StatusCode::GONE,
            &format!("The rule “{}” is no longer in the config.", ballot.rule),
        ));
    }
    Ok((ballot, alert))
}

fn refusal(status: StatusCode, message: &str) -> (StatusCode, FeedbackPage) {
    let page = FeedbackPage {
        heading: "This link cannot be used".into(),
        message: message.to_owned(),
        ..FeedbackPage::default()
    };
    (status, page)
}
