//! `send-test`: a sample alert through one channel, now and outside the outbox, to
//! see that the channel works and what its receiver answers.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::{ConfigArg, UsageError};
use crate::config::Config;

#[derive(Debug, Args)]
pub(super) struct SendTestArgs {
    /// The channel's name, as in [channels.NAME]
    pub channel: String,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// `send-test`: one sample alert, delivered now, outside the outbox.
pub(super) async fn send_test(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let channel = config.channels.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        UsageError(format!(
            "no channel {name:?}; the config defines: {}",
            known.join(", ")
        ))
    })?;
    let notifier = crate::notify::Notifier::new(config.smtp.as_ref())?;
    let now = chrono::Utc::now();
    let text =
        "Foreign Minister Sergei Lavrov and Secretary of State Antony Blinken met in Geneva.";
    let alert = crate::model::Alert {
        terms: vec!["Lavrov".into(), "Blinken".into()],
        snippet: crate::model::Snippet {
            text: text.into(),
            highlights: vec![(24, 30), (61, 68)],
        },
        why: vec![crate::model::RuleFields {
            meaning: None,
            rule: "send-test".into(),
            fields: vec![crate::model::Field::Title, crate::model::Field::Summary],
        }],
        ..crate::model::Alert::from(crate::model::Notice {
            feed: crate::model::FeedId("newshound-send-test".into()),
            // A new key each time, so every test is a new message, not a redelivery.
            key: crate::model::ItemKey(format!("send-test:{}", now.timestamp_micros())),
            title: "newshound test alert: Lavrov and Blinken meet in Geneva".into(),
            link: Some("https://example.org/newshound-test".into()),
            rules: vec!["send-test".into()],
            text: String::new(),
            at: now,
        })
    };
    let mut out = std::io::stdout().lock();
    let kind = crate::render::MessageKind::Alert;
    match notifier
        .deliver(
            name,
            &channel.transport,
            &channel.templates,
            std::slice::from_ref(&alert),
            &kind,
        )
        .await
    {
        Ok(receipt) => {
            writeln!(
                out,
                "channel {name} ({}): sent; the receiver answered: {receipt}",
                channel.kind()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let class = if e.retryable {
                "temporary: would be retried"
            } else {
                "permanent: would be a dead letter"
            };
            writeln!(
                out,
                "channel {name} ({}): failed ({class}): {e}",
                channel.kind()
            )?;
            Ok(ExitCode::FAILURE)
        }
    }
}
