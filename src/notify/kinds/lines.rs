//! `type = "lines"`, a kind that exists in tests only, to show what a new kind takes:
//! this file and one line in the table of kinds. Each message appends one line per
//! alert (channel and title) to the file at `path`.

use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Kind, Outgoing, Settings};
use crate::notify::DeliveryError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines {
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    path: PathBuf,
}

impl Kind for Lines {
    const NAME: &'static str = "lines";
    const IN_FLIGHT: usize = 1;
    const CHANGED: &'static str = "path changed";
    type Raw = Raw;

    fn check<S: Settings>(raw: Raw, settings: &S) -> Result<Lines, S::Error> {
        Ok(Lines {
            path: settings.path(&raw.path),
        })
    }

    fn describe(&self) -> String {
        format!("lines into {}", self.path.display())
    }


    async fn send(&self, out: &Outgoing<'_>) -> Result<String, DeliveryError> {
        let text: String = out
            .alerts
            .iter()
            .map(|a| format!("{}: {}\n", out.channel, a.title))
            .collect();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map(|()| format!("{} lines", out.alerts.len()))
            .map_err(|e| DeliveryError::retry(format!("lines {}: {e}", self.path.display())))
    }
}

mod tests {
    use std::collections::HashMap;

    use crate::config::Config;
    use crate::model::{Alert, FeedId, ItemKey, Notice};
    use crate::notify::Notifier;
    use crate::render::MessageKind;

    fn alert(title: &str) -> Alert {
        Alert::from(Notice {
            feed: FeedId("wire".into()),
            key: ItemKey(title.into()),
            title: title.into(),
            link: None,
            rules: vec!["talks".into()],
            text: String::new(),
            at: chrono::Utc::now(),
        })
    }

    #[tokio::test]
    async fn a_kind_in_one_file_is_checked_paced_described_and_sends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("newshound.toml");
        let text = "[channels.log]\ntype = \"lines\"\npath = \"alerts.txt\"\nmax_per_minute = 5\n";
        let config = Config::from_toml(&file, text, &HashMap::new()).expect("a valid config");
        let channel = &config.channels["log"];
        let written = dir.path().join("alerts.txt");
        assert_eq!(channel.kind(), "lines");
        assert_eq!(channel.max_per_minute, Some(5));
        assert_eq!(
            channel.transport.describe(),
            format!("lines into {}", written.display())
        );

        let typo = Config::from_toml(&file, &text.replace("path", "paht"), &HashMap::new())
            .expect_err("an unknown key");
        assert!(
            typo.to_string()
                .contains("channels.log: unknown field `paht`, expected `path`"),
            "{typo}"
        );

        let notifier = Notifier::new(None).expect("a notifier");
        let alerts = [alert("Talks in Geneva"), alert("Talks end")];
        let receipt = notifier
            .deliver(
                "log",
                &channel.transport,
                &channel.templates,
                &alerts,
                &MessageKind::Alert,
            )
            .await
            .expect("delivered");
        assert_eq!(receipt, "2 lines");
        assert_eq!(
            std::fs::read_to_string(&written).expect("written"),
            "log: Talks in Geneva\nlog: Talks end\n"
        );
    }
}
