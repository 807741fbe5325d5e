use super::kinds::{self, maildir};
use super::*;
use crate::model::{FeedId, Field, ItemKey, Priority, RuleFields, Snippet};
use crate::render::Templates;
use crate::render::{MessageView, Rendered};

fn alert(title: &str) -> Alert {
    Alert {
        feed: FeedId("moscow-times".into()),
        key: ItemKey("mt-76116".into()),
        title: title.into(),
        link: Some("https://news.example.org/a76116".into()),
        published: chrono::DateTime::from_timestamp(1_642_764_900, 0),
        rules: vec!["talks".into()],
        terms: vec!["Lavrov".into(), "Blinken".into()],
        snippet: Snippet {
            text: "Lavrov and Blinken met <in> Geneva".into(),
            highlights: vec![(0, 6), (11, 18)],
        },
        why: vec![RuleFields {
            meaning: None,
            rule: "talks".into(),
            fields: vec![Field::Title, Field::Summary],
        }],
        summary_html: None,
        also_in: Vec::new(),
        sketch: None,
        gist: None,
        priority: Priority::Normal,
        feedback: Vec::new(),
    }
}

fn mailbox(s: &str) -> Mailbox {
    s.parse().expect("test address")
}

/// The email the default templates make of one alert.
fn render(alert: &Alert) -> String {
    render_with(alert, &Templates::default())
}

/// The email `templates` make of one alert to `me@example.org`.
fn render_with(alert: &Alert, templates: &Templates) -> String {
    let message = message::email(
        std::slice::from_ref(alert),
        &MessageKind::Alert,
        "me",
        templates,
        &mailbox("newshound <alerts@example.org>"),
        &[mailbox("me@example.org")],
    )
    .expect("message builds");
    String::from_utf8(message.formatted()).expect("utf-8 message")
}

/// The subject, text and HTML the default templates make of one alert.
fn parts(alert: &Alert) -> Rendered {
    Templates::default()
        .render(&MessageView::new(
            &MessageKind::Alert,
            "me",
            std::slice::from_ref(alert),
        ))
        .expect("renders")
}

fn header_names(raw: &str) -> Vec<&str> {
    raw.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| l.split_once(':').map(|(name, _)| name))
        .collect()
}

#[test]
fn the_email_has_subject_ids_and_both_bodies() {
    let seed = alert("Russia, U.S. Agree to Talk Security Demands Next Week");
    let raw = render(&seed).replace("\r\n ", " ");
    assert!(raw.contains(
        "Subject: [newshound] talks: Russia, U.S. Agree to Talk Security Demands Next Week\r\n"
    ));
    let id = message::message_id(std::slice::from_ref(&seed), "me");
    assert!(raw.contains(&format!("Message-ID: {id}\r\n")));
    assert!(raw.contains("Content-Type: multipart/alternative;"));
    assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(raw.contains("Content-Type: text/html; charset=utf-8"));

    let Rendered { text, html, .. } = parts(&seed);
    assert!(
        text.contains("*Lavrov* and *Blinken* met <in> Geneva"),
        "{text}"
    );
    assert!(text.contains("Link:    https://news.example.org/a76116"));
    assert!(text.contains("Date:    2022-01-21 11:35 UTC"));
    assert!(
        text.contains("You got this because newshound rule talks matched in the title, summary."),
        "{text}"
    );
    assert!(html.contains("<mark>Lavrov</mark> and <mark>Blinken</mark> met &lt;in&gt; Geneva"));
    assert!(
        html.contains("<a href=\"https://news.example.org/a76116\">"),
        "{html}"
    );
    assert!(
        html.contains("rule <b>talks</b> matched in the title, summary"),
        "{html}"
    );
}

#[test]
fn alerts_about_one_story_thread_together_and_carry_a_list_id_per_rule() {
    let raw = render(&alert("Talks")).replace("\r\n ", " ");
    let story = message::story_id(&alert("Talks"));
    assert!(raw.contains(&format!("In-Reply-To: {story}\r\n")), "{raw}");
    assert!(raw.contains(&format!("References: {story}\r\n")), "{raw}");
    assert!(
        raw.contains("List-Id: newshound rule talks <talks.newshound>\r\n"),
        "{raw}"
    );
    // The same link from another feed is the same story; another link is not.
    let mut elsewhere = alert("Talks, as reported elsewhere");
    elsewhere.feed = FeedId("other-wire".into());
    assert_eq!(message::story_id(&elsewhere), story);
    elsewhere.link = Some("https://other.example.org/x".into());
    assert_ne!(message::story_id(&elsewhere), story);
}

#[test]
fn the_message_id_depends_on_item_and_channel_only() {
    let id = |title: &str, channel: &str| message::message_id(&[alert(title)], channel);
    let a = id("one title", "me");
    assert_eq!(a, id("another title", "me"));
    assert_ne!(a, id("one title", "team"));
    // Pinned: a change would make every alert queued before an upgrade look new.
    assert_eq!(a, "<b5a3abd0888ff3a3337447d08c34b1de@newshound>");
}

#[test]
fn a_title_cannot_inject_a_header() {
    let raw = render(&alert("Hello\r\nBcc: victim@example.org\r\nX-Evil: 1"));
    let names = header_names(&raw);
    assert!(!names.contains(&"Bcc"), "{raw}");
    assert!(!names.contains(&"X-Evil"), "{raw}");
    let raw = render(&alert("a\nb\r\nc\td"));
    assert!(
        raw.contains("Subject: [newshound] talks: a b c d\r\n"),
        "{raw}"
    );
}

#[test]
fn feed_text_is_escaped_and_only_web_links_are_clickable() {
    let mut evil = alert("<script>alert(1)</script>");
    evil.link = Some("javascript:alert(1)".into());
    let html = parts(&evil).html;
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"));
    assert!(!html.contains("href=\"javascript:"), "{html}");
}

#[test]
fn the_webhook_body_is_the_documented_object() {
    let body = serde_json::to_string(&message::webhook_body(&alert("Title"))).expect("json");
    assert!(body.starts_with(r#"{"feed":"moscow-times","key":"mt-76116","title":"Title","link":"#));
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({
            "feed": "moscow-times",
            "key": "mt-76116",
            "title": "Title",
            "link": "https://news.example.org/a76116",
            "published": "2022-01-21T11:35:00Z",
            "rules": ["talks"],
            "terms": ["Lavrov", "Blinken"],
            "snippet": "Lavrov and Blinken met <in> Geneva",
        })
    );
}

/// A story other feeds carried too: every format names them.
#[test]
fn other_feeds_of_the_story_are_listed_in_every_format() {
    use crate::notify::WebhookFormat;
    let mut a = alert("Talks in Geneva");
    a.also_in = vec![crate::model::Source {
        feed: FeedId("herald".into()),
        title: "Ministers agree to meet again".into(),
        link: Some("https://herald.example/1".into()),
    }];
    let body = serde_json::to_value(message::webhook_body(&a)).expect("json");
    assert_eq!(
        body["also"],
        serde_json::json!([{"feed": "herald", "title": "Ministers agree to meet again", "link": "https://herald.example/1"}])
    );
    let text = parts(&a).text;
    assert!(
        text.contains(
            "Also reported by:\n  - herald: Ministers agree to meet again\n    <https://herald.example/1>"
        ),
        "{text}"
    );
    let html = parts(&a).html;
    assert!(
        html.contains(
            "herald: <a href=\"https://herald.example/1\">Ministers agree to meet again</a>"
        ),
        "{html}"
    );
    let (_, slack) = webhook(
        WebhookFormat::Slack,
        "https://hooks.slack.com/services/T/B/X",
        &a,
    );
    assert!(
        slack["text"]
            .as_str()
            .expect("text")
            .ends_with("\nAlso reported by: herald"),
        "{slack}"
    );
    let (_, discord) = webhook(
        WebhookFormat::Discord,
        "https://discord.com/api/webhooks/1/x",
        &a,
    );
    assert_eq!(
        discord["embeds"][0]["fields"][0]["value"], "herald",
        "{discord}"
    );
    let (_, ntfy) = webhook(WebhookFormat::Ntfy, "https://ntfy.example/topic", &a);
    assert!(
        ntfy["message"]
            .as_str()
            .expect("message")
            .ends_with("Also reported by: herald"),
        "{ntfy}"
    );
}

#[test]
fn maildir_delivery_lands_in_new_and_a_redelivery_replaces_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let maildir = dir.path().join("alerts");
    maildir::deliver(&maildir, "<abc@newshound>", b"Subject: x\r\n\r\nbody").expect("delivered");
    maildir::deliver(&maildir, "<abc@newshound>", b"Subject: x\r\n\r\nbody").expect("again");
    let new: Vec<_> = std::fs::read_dir(maildir.join("new"))
        .expect("new/")
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(
        std::fs::read_dir(maildir.join("tmp"))
            .expect("tmp/")
            .count(),
        0
    );
}

#[test]
fn a_maildir_that_cannot_be_created_is_a_retryable_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "not a directory").expect("write");
    assert!(maildir::deliver(&blocker.join("alerts"), "<x@y>", b"m").is_err());
}

/// The Standard Webhooks specification's published test vector.
#[test]
fn webhook_signatures_match_the_standard_webhooks_vector() {
    let secret = crate::model::Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned());
    let key = secret.webhook_key().expect("a valid key");
    assert_eq!(
        message::sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}

#[test]
fn the_webhook_id_is_stable_per_item_and_channel() {
    let id = message::webhook_id(&[alert("one")], "team");
    assert!(id.starts_with("msg_"));
    assert_eq!(id, message::webhook_id(&[alert("two")], "team"));
    assert_ne!(id, message::webhook_id(&[alert("one")], "me"));
}

fn webhook(
    format: crate::notify::WebhookFormat,
    url: &str,
    alert: &Alert,
) -> (String, serde_json::Value) {
    let (target, body) = kinds::webhook::webhook_request(
        &url.parse().expect("url"),
        format,
        std::slice::from_ref(alert),
        &MessageKind::Alert,
        "team",
    );
    (
        target.to_string(),
        serde_json::from_str(&body.expect("encodes")).expect("json"),
    )
}

#[test]
fn slack_discord_and_ntfy_get_their_own_shapes() {
    use crate::notify::WebhookFormat;
    let mut a = alert("NATO <summit> & Lavrov");
    a.snippet = Snippet {
        text: "Lavrov met *Blinken*".into(),
        highlights: vec![(0, 6)],
    };
    let (target, slack) = webhook(
        WebhookFormat::Slack,
        "https://hooks.slack.com/services/T/B/X",
        &a,
    );
    assert_eq!(target, "https://hooks.slack.com/services/T/B/X");
    assert_eq!(
        slack,
        serde_json::json!({"text": "*[newshound] talks*: <https://news.example.org/a76116|NATO &lt;summit&gt; &amp; Lavrov>\n*Lavrov* met *Blinken*\n_moscow-times_"})
    );

    let (_, discord) = webhook(
        WebhookFormat::Discord,
        "https://discord.com/api/webhooks/1/x",
        &a,
    );
    assert_eq!(discord["content"], "[newshound] talks");
    assert_eq!(discord["embeds"][0]["title"], "NATO <summit> & Lavrov");
    assert_eq!(
        discord["embeds"][0]["url"],
        "https://news.example.org/a76116"
    );
    assert_eq!(
        discord["embeds"][0]["description"],
        "**Lavrov** met \\*Blinken\\*"
    );

    let (target, ntfy) = webhook(
        WebhookFormat::Ntfy,
        "https://ntfy.example.org/news-alerts",
        &a,
    );
    assert_eq!(target, "https://ntfy.example.org/");
    assert_eq!(ntfy["topic"], "news-alerts");
    assert_eq!(ntfy["title"], "[newshound] talks: NATO <summit> & Lavrov");
    assert_eq!(ntfy["message"], "**Lavrov** met \\*Blinken\\*");
    assert_eq!(ntfy["click"], "https://news.example.org/a76116");
    assert_eq!(ntfy["markdown"], true);
    assert!(ntfy.get("priority").is_none(), "normal is ntfy's default");
    // Regression: a server behind a reverse proxy at a sub-path got its posts at the
    // host's root, with the sub-path taken for part of the topic.
    let (target, ntfy) = webhook(
        WebhookFormat::Ntfy,
        "https://example.org/ntfy/news-alerts",
        &a,
    );
    assert_eq!(target, "https://example.org/ntfy/");
    assert_eq!(ntfy["topic"], "news-alerts");
    let (_, json) = webhook(WebhookFormat::Json, "https://hooks.example.org/x", &a);
    assert!(
        json.get("priority").is_none(),
        "the documented object, unchanged"
    );
    for (priority, ntfy_priority) in [(Priority::Low, 2), (Priority::High, 4)] {
        a.priority = priority;
        let (_, ntfy) = webhook(WebhookFormat::Ntfy, "https://ntfy.example.org/news", &a);
        assert_eq!(ntfy["priority"], ntfy_priority);
        let (_, json) = webhook(WebhookFormat::Json, "https://hooks.example.org/x", &a);
        assert_eq!(json["priority"], format!("{priority:?}").to_lowercase());
    }
}

#[test]
fn a_feed_name_in_a_custom_subject_cannot_inject_a_header() {
    let mut a = alert("Talks");
    a.feed = FeedId("wire\r\nBcc: victim@example.org".into());
    let templates = Templates::new(
        Some("{{ alert.feed }}: {{ alert.title }}".into()),
        None,
        None,
    )
    .expect("template compiles");
    let raw = render_with(&a, &templates);
    assert!(!header_names(&raw).contains(&"Bcc"), "{raw}");
    assert!(
        raw.contains("Subject: wire Bcc: victim@example.org: Talks\r\n"),
        "{raw}"
    );
}

#[test]
fn summaries_list_linked_titles_in_each_webhook_format() {
    use crate::notify::WebhookFormat;
    let mut second = alert("Second <one>");
    second.key = ItemKey("k2".into());
    second.link = Some("javascript:alert(1)".into());
    let alerts = [alert("First & best"), second];
    let kind = MessageKind::Summary { limit: 2 };
    let body = |format, url: &str| {
        let (target, body) = kinds::webhook::webhook_request(
            &url.parse().expect("url"),
            format,
            &alerts,
            &kind,
            "team",
        );
        let body: serde_json::Value = serde_json::from_str(&body.expect("encodes")).expect("json");
        (target.to_string(), body)
    };

    let (_, json) = body(WebhookFormat::Json, "https://hooks.example.org/x");
    assert_eq!(json["kind"], "summary");
    assert_eq!(json["channel"], "team");
    assert_eq!(json["count"], 2);
    assert_eq!(json["alerts"][1]["title"], "Second <one>");

    let (_, slack) = body(
        WebhookFormat::Slack,
        "https://hooks.slack.com/services/T/B/X",
    );
    assert_eq!(
        slack["text"],
        "*[newshound] 2 more alerts on team*\n\
         • <https://news.example.org/a76116|First &amp; best> _moscow-times_\n\
         • Second &lt;one&gt; _moscow-times_"
    );

    let (_, discord) = body(
        WebhookFormat::Discord,
        "https://discord.com/api/webhooks/1/x",
    );
    assert_eq!(discord["content"], "[newshound] 2 more alerts on team");
    assert_eq!(
        discord["embeds"][0]["description"],
        "• [First & best](https://news.example.org/a76116) · moscow-times\n• Second <one\\> · moscow-times"
    );

    let (target, ntfy) = body(WebhookFormat::Ntfy, "https://ntfy.example.org/news");
    assert_eq!(target, "https://ntfy.example.org/");
    assert_eq!(ntfy["title"], "[newshound] 2 more alerts on team");
    assert_eq!(
        ntfy["message"],
        "- [First & best](https://news.example.org/a76116) (moscow-times)\n- Second <one\\> (moscow-times)"
    );
    assert!(ntfy.get("click").is_none(), "no single link for a list");
}

/// A JSON string's text.
fn text_of(value: &serde_json::Value) -> String {
    value.as_str().expect("a string").to_owned()
}

/// An alert whose channel has feedback links, for `rules`.
fn voted(key: &str, title: &str, rules: &[&str]) -> Alert {
    let mut a = alert(title);
    a.key = ItemKey(key.into());
    a.rules = rules.iter().map(|r| (*r).to_owned()).collect();
    a.feedback = rules
        .iter()
        .map(|rule| crate::model::Feedback {
            rule: (*rule).to_owned(),
            more: format!("https://nh.test/feedback?a={key}&r={rule}&v=more"),
            not: format!("https://nh.test/feedback?a={key}&r={rule}&v=not"),
        })
        .collect();
    a
}

#[test]
fn feedback_links_are_in_every_chat_and_push_message_alone_or_listed() {
    use crate::notify::WebhookFormat;
    let one = [voted("1", "Talks in Geneva", &["talks"])];
    let two = [
        voted("1", "Talks in Geneva", &["talks"]),
        voted("2", "Envoys meet", &["talks", "geneva"]),
    ];
    let md = |key: &str, rule: &str| {
        format!(
            "[More like this](https://nh.test/feedback?a={key}&r={rule}&v=more) · \
             [Not this](https://nh.test/feedback?a={key}&r={rule}&v=not)"
        )
    };
    let slack = |key: &str, rule: &str| {
        format!(
            "<https://nh.test/feedback?a={key}&amp;r={rule}&amp;v=more|More like this> · \
             <https://nh.test/feedback?a={key}&amp;r={rule}&amp;v=not|Not this>"
        )
    };
    let html = |key: &str, rule: &str| {
        format!(
            "<a href=\"https://nh.test/feedback?a={key}&amp;r={rule}&amp;v=more\">More like \
             this</a> · <a href=\"https://nh.test/feedback?a={key}&amp;r={rule}&amp;v=not\">Not \
             this</a>"
        )
    };
    let summary = MessageKind::Summary { limit: 2 };
    for (alerts, kind) in [(&one[..], &MessageKind::Alert), (&two[..], &summary)] {
        let expected = |link: &dyn Fn(&str, &str) -> String| match alerts.len() {
            1 => vec![link("1", "talks")],
            _ => vec![
                link("1", "talks"),
                format!("talks: {}", link("2", "talks")),
                format!("geneva: {}", link("2", "geneva")),
            ],
        };
        let request = |format| {
            let (_, body) = kinds::webhook::webhook_request(
                &"https://hooks.example.org/x/news".parse().expect("url"),
                format,
                alerts,
                kind,
                "team",
            );
            serde_json::from_str::<serde_json::Value>(&body.expect("encodes")).expect("json")
        };
        let post = message::post(alerts, kind, "team");
        let texts = [
            (
                "slack",
                text_of(&request(WebhookFormat::Slack)["text"]),
                expected(&slack),
            ),
            (
                "discord",
                text_of(&request(WebhookFormat::Discord)["embeds"][0]["description"]),
                expected(&md),
            ),
            (
                "ntfy",
                text_of(&request(WebhookFormat::Ntfy)["message"]),
                expected(&md),
            ),
            ("markdown", message::markdown(&post), expected(&md)),
            ("html", message::html(&post, "\n", 4096), expected(&html)),
        ];
        for (format, text, links) in texts {
            for link in links {
                assert!(text.contains(&link), "{format}: {link}\n{text}");
            }
        }
        let plain = message::plain(&post);
        assert!(
            plain.contains("https://nh.test/feedback?a=1&r=talks&v=not"),
            "{plain}"
        );
    }
}

#[test]
fn a_long_list_keeps_within_each_services_size_and_drops_links_before_alerts() {
    use crate::notify::WebhookFormat;
    let alerts: Vec<Alert> = (0..30)
        .map(|n| voted(&n.to_string(), &format!("Story number {n}"), &["talks"]))
        .collect();
    let kind = MessageKind::Digest {
        period: "daily".into(),
    };
    let request = |format| {
        let (_, body) = kinds::webhook::webhook_request(
            &"https://hooks.example.org/x/news".parse().expect("url"),
            format,
            &alerts,
            &kind,
            "team",
        );
        serde_json::from_str::<serde_json::Value>(&body.expect("encodes")).expect("json")
    };
    let ntfy = text_of(&request(WebhookFormat::Ntfy)["message"]);
    let discord = text_of(&request(WebhookFormat::Discord)["embeds"][0]["description"]);
    let post = message::post(&alerts, &kind, "team");
    let pushover = message::html(&post, "\n", 1024);
    for (service, text, max) in [
        ("ntfy", &ntfy, 4096),
        ("discord", &discord, 4096),
        ("pushover", &pushover, 1024),
    ] {
        assert!(text.len() <= max, "{service}: {} bytes", text.len());
        assert!(text.contains("Story number 0"), "{service}: {text}");
        assert!(text.ends_with(" more"), "{service}: {text}");
        assert!(
            !text.contains("feedback?"),
            "{service}: links go before alerts do: {text}"
        );
    }
    assert!(
        pushover.matches("Story number").count() > 5,
        "without links more alerts fit: {pushover}"
    );
    let few = message::post(&alerts[..2], &kind, "team");
    assert!(
        message::html(&few, "\n", 1024).contains("feedback?a=1"),
        "links stay where every line fits with them"
    );
}
