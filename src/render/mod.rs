//! The email templates (minijinja): built-in defaults, per-channel overrides checked
//! at load, and the variables a template sees.
//!
//! Every message renders three templates from one [`MessageView`]: `subject`, `text`
//! and `html` (the HTML one escapes what it prints; `snippet_html` and `summary_html`
//! are already safe). A single alert, a digest and a flood-control summary use the same
//! three, told apart by `kind`.

mod body;
pub mod status;

use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

pub use body::BodyTemplate;

use crate::model::{Alert, FeedId, ItemKey, Notice, RuleFields, Snippet, Source};

const SUBJECT: &str = "subject.txt";
const TEXT: &str = "text.txt";
const HTML: &str = "html.html";

const DEFAULTS: [(&str, &str); 3] = [
    (SUBJECT, include_str!("subject.txt")),
    (TEXT, include_str!("text.txt")),
    (HTML, include_str!("html.html")),
];

/// What a channel's messages look like: the defaults with any overrides compiled in.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    /// The overrides, in [`DEFAULTS`] order, to compare configs and to say what is set.
    overrides: [Option<String>; 3],
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = DEFAULTS
            .iter()
            .zip(&self.overrides)
            .filter(|(_, o)| o.is_some())
            .map(|((name, _), _)| *name)
            .collect();
        f.debug_struct("Templates")
            .field("overridden", &names)
            .finish()
    }
}

impl PartialEq for Templates {
    fn eq(&self, other: &Templates) -> bool {
        self.overrides == other.overrides
    }
}

impl Eq for Templates {}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new(None, None, None).expect("the built-in templates render")
    }
}

/// A template that does not parse, or fails on a sample message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// `subject`, `text` or `html`: the key in the config.
    pub which: &'static str,
    pub message: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// Compiles the defaults with the given overrides and renders sample messages of
    /// every kind, so a mistake (bad syntax, an unknown variable or filter) shows now
    /// rather than when an alert is sent.
    pub fn new(
        subject: Option<String>,
        text: Option<String>,
        html: Option<String>,
    ) -> Result<Templates, TemplateError> {
        let overrides = [subject, text, html];
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for ((name, default), custom) in DEFAULTS.iter().zip(&overrides) {
            let source = custom.clone().unwrap_or_else(|| (*default).to_owned());
            env.add_template_owned(*name, source.clone())
                .map_err(|e| template_error(name, &source, &e))?;
        }
        let templates = Templates {
            env: Arc::new(env),
            overrides,
        };
        for sample in MessageView::samples() {
            templates.render(&sample)?;
        }
        Ok(templates)
    }

    /// Whether any template is overridden.
    pub fn is_custom(&self) -> bool {
        self.overrides.iter().any(Option::is_some)
    }

    pub fn render(&self, view: &MessageView) -> Result<Rendered, TemplateError> {
        let context = Value::from(minijinja::value::Serde(view));
        let render = |name: &'static str| {
            let template = self
                .env
                .get_template(name)
                .map_err(|e| template_error(name, "", &e))?;
            template
                .render(&context)
                .map_err(|e| template_error(name, template.source(), &e))
        };
        Ok(Rendered {
            subject: render(SUBJECT)?,
            text: render(TEXT)?,
            html: render(HTML)?,
        })
    }
}

/// `kind: detail at "the expression" (line n)`, from what minijinja says and where.
fn template_error(name: &'static str, source: &str, e: &minijinja::Error) -> TemplateError {
    let which = name.split('.').next().unwrap_or(name);
    let mut message = format!("{}", e.kind());
    if let Some(detail) = e.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    if let Some(at) = e.range().and_then(|r| source.get(r))
        && !message.contains(at)
    {
        message.push_str(&format!(" at {at:?}"));
    }
    if let Some(line) = e.line() {
        message.push_str(&format!(" (line {line})"));
    }
    TemplateError { which, message }
}

/// What one message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    /// One alert, sent as soon as it is found.
    Alert,
    /// The alerts of one digest period (`period` says which, as configured).
    Digest { period: String },
    /// Alerts beyond the channel's per-minute limit, folded into one message.
    Summary { limit: u32 },
}

/// The variables of a template.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// `alert`, `digest` or `summary`.
    pub kind: &'static str,
    pub channel: String,
    /// The digest period (`1h`, `daily 08:00`), for digests.
    pub period: Option<String>,
    /// The channel's per-minute limit, for summaries.
    pub limit: Option<u32>,
    /// How many alerts the message holds.
    pub count: usize,
    /// The first (for `alert`: the only) alert.
    pub alert: AlertView,
    pub alerts: Vec<AlertView>,
    /// The alerts grouped by their first rule, rules in order of first appearance.
    pub groups: Vec<GroupView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub rule: String,
    pub alerts: Vec<AlertView>,
}

/// One alert as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub feed: String,
    /// The item's title, or `(untitled item)`.
    pub title: String,
    /// The item's link as the feed gave it.
    pub link: Option<String>,
    /// The link when it is safe to make clickable (http or https), escaped for an
    /// attribute.
    pub href: Option<Value>,
    /// `2022-01-21 11:35 UTC`, or `unknown`.
    pub date: String,
    /// RFC 3339, when the feed dated the item.
    pub published: Option<String>,
    pub rules: Vec<String>,
    pub terms: Vec<String>,
    /// The snippet with hits as `*term*`.
    pub snippet: String,
    /// The snippet, escaped, with hits in `<mark>`.
    pub snippet_html: Value,
    /// The item's summary as sanitised HTML, if the feed gave HTML.
    pub summary_html: Option<Value>,
    /// Each rule and the fields (`title`, `summary`, …) it matched in.
    pub why: Vec<WhyView>,
    /// Whether the rules matched only in the article at the link, not in the feed.
    pub only_in_article: bool,
    /// Other feeds that carried the same story.
    pub also_in: Vec<SourceView>,
    /// "More like this" and "not this" links, one pair per rule, when the channel
    /// gives them (`feedback = true`).
    pub feedback: Vec<FeedbackView>,
}

/// One rule's feedback links under an alert: as text, and escaped for an attribute.
#[derive(Debug, Clone, Serialize)]
pub struct FeedbackView {
    pub rule: String,
    pub more: String,
    pub not: String,
    pub more_href: Option<Value>,
    pub not_href: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WhyView {
    pub rule: String,
    pub fields: Vec<&'static str>,
    /// A topic rule's score (`0.62`), and the rule's text nearest the item.
    pub score: Option<String>,
    pub closest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub feed: String,
    pub title: String,
    pub link: Option<String>,
    pub href: Option<Value>,
}

impl MessageView {
    /// The view of `alerts` (at least one) going to `channel` as a message of `kind`.
    pub fn new(kind: &MessageKind, channel: &str, alerts: &[Alert]) -> MessageView {
        let views: Vec<AlertView> = alerts.iter().map(AlertView::new).collect();
        let mut groups: Vec<GroupView> = Vec::new();
        for (alert, view) in alerts.iter().zip(&views) {
            let rule = alert.rules.first().cloned().unwrap_or_default();
            match groups.iter_mut().find(|g| g.rule == rule) {
                Some(group) => group.alerts.push(view.clone()),
                None => groups.push(GroupView {
                    rule,
                    alerts: vec![view.clone()],
                }),
            }
        }
        let (kind, period, limit) = match kind {
            MessageKind::Alert => ("alert", None, None),
            MessageKind::Digest { period } => ("digest", Some(period.clone()), None),
            MessageKind::Summary { limit } => ("summary", None, Some(*limit)),
        };
        MessageView {
            kind,
            channel: channel.to_owned(),
            period,
            limit,
            count: views.len(),
            alert: views
                .first()
                .cloned()
                .unwrap_or_else(|| AlertView::new(&sample_alert(None))),
            alerts: views,
            groups,
        }
    }

    /// Messages of every kind, with every optional value present and absent.
    fn samples() -> Vec<MessageView> {
        let full = sample_alert(Some("<p>The <b>talks</b> went on.</p>"));
        let bare = Alert {
            link: None,
            published: None,
            why: Vec::new(),
            also_in: Vec::new(),
            title: String::new(),
            ..sample_alert(None)
        };
        let both = [full.clone(), bare.clone()];
        vec![
            MessageView::new(&MessageKind::Alert, "sample", std::slice::from_ref(&full)),
            MessageView::new(&MessageKind::Alert, "sample", &[bare]),
            MessageView::new(
                &MessageKind::Digest {
                    period: "1h".into(),
                },
                "sample",
                &both,
            ),
            MessageView::new(&MessageKind::Summary { limit: 5 }, "sample", &both),
        ]
    }
}

impl AlertView {
    pub fn new(alert: &Alert) -> AlertView {
        AlertView {
            feed: alert.feed.0.clone(),
            title: if alert.title.trim().is_empty() {
                "(untitled item)".into()
            } else {
                alert.title.clone()
            },
            link: alert.link.clone(),
            href: href(alert.link.as_deref()),
            date: alert.published.map_or_else(
                || "unknown".into(),
                |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
            published: alert.published.map(crate::model::rfc3339),
            rules: alert.rules.clone(),
            terms: alert.terms.clone(),
            snippet: alert.snippet.marked("*", "*"),
            snippet_html: Value::from_safe_string(alert.snippet.marked_escaped(
                "<mark>",
                "</mark>",
                |piece| html_escape::encode_text(piece).into_owned(),
            )),
            summary_html: alert.summary_html.clone().map(Value::from_safe_string),
            why: alert
                .why
                .iter()
                .map(|w| WhyView {
                    rule: w.rule.clone(),
                    fields: w.fields.iter().map(|f| f.name()).collect(),
                    score: w.meaning.as_ref().map(|m| format!("{:.2}", m.score)),
                    closest: w.meaning.as_ref().map(|m| m.closest.clone()),
                })
                .collect(),
            only_in_article: alert.only_in_article(),
            feedback: alert
                .feedback
                .iter()
                .map(|f| FeedbackView {
                    rule: f.rule.clone(),
                    more: f.more.clone(),
                    not: f.not.clone(),
                    more_href: href(Some(&f.more)),
                    not_href: href(Some(&f.not)),
                })
                .collect(),
            also_in: alert
                .also_in
                .iter()
                .map(|s| SourceView {
                    feed: s.feed.0.clone(),
                    title: s.title.clone(),
                    link: s.link.clone(),
                    href: href(s.link.as_deref()),
                })
                .collect(),
        }
    }
}

/// Only web links become clickable; `javascript:` and friends stay text.
pub fn safe_link(link: Option<&str>) -> Option<String> {
    link.filter(|l| url::Url::parse(l).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
        .map(str::to_owned)
}

/// A safe link, escaped for a double-quoted attribute (minijinja's own escaping would
/// also turn every `/` into `&#x2f;`).
fn href(link: Option<&str>) -> Option<Value> {
    safe_link(link).map(|l| {
        Value::from_safe_string(html_escape::encode_double_quoted_attribute(&l).into_owned())
    })
}

fn sample_alert(summary_html: Option<&str>) -> Alert {
    Alert {
        terms: vec!["Lavrov".into()],
        snippet: Snippet {
            text: "Lavrov met Blinken".into(),
            highlights: vec![(0, 6)],
        },
        why: vec![RuleFields {
            meaning: None,
            rule: "sample".into(),
            fields: vec![crate::model::Field::Title],
        }],
        summary_html: summary_html.map(str::to_owned),
        also_in: vec![Source {
            feed: FeedId("elsewhere".into()),
            title: "Lavrov meets Blinken".into(),
            link: Some("https://elsewhere.example.org/1".into()),
        }],
        feedback: vec![crate::model::Feedback {
            rule: "sample".into(),
            more: "https://newshound.example.org/feedback?a=1&r=sample&v=more".into(),
            not: "https://newshound.example.org/feedback?a=1&r=sample&v=not".into(),
        }],
        ..Alert::from(Notice {
            feed: FeedId("sample-feed".into()),
            key: ItemKey("sample".into()),
            title: "Lavrov meets Blinken".into(),
            link: Some("https://news.example.org/1".into()),
            rules: vec!["sample".into()],
            text: String::new(),
            at: chrono::Utc::now(),
        })
    }
}
