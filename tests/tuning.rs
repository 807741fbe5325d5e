//! Rules people tune: filters that drop items before any rule sees them, `why` an
//! item did or did not alert, what each rule caught day by day, and feedback links.

mod support;

use newshound::daemon::Pipeline;
use support::{TestConfig, serve_feed};
use wiremock::MockServer;

/// An RSS document with one item per (guid, title).
fn rss(items: &[(&str, &str)]) -> Vec<u8> {
    let items: String = items
        .iter()
        .map(|(guid, title)| {
            format!(
                "<item><guid>{guid}</guid><title>{title}</title>\
                 <link>https://news.test/{guid}</link></item>"
            )
        })
        .collect();
    format!("<rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>").into_bytes()
}

/// `newshound <args> --config <config>`, its standard output.
fn newshound(config: &TestConfig, args: &[&str]) -> String {
    let out = config.run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const FILTERED: &str = r#"
[[filters]]
name = "no ads"
drop = "sponsored"

[channels.inbox]
type = "maildir"
path = "inbox"

[[rules]]
name = "talks"
keywords = ["Lavrov"]
channels = ["inbox"]
"#;

#[tokio::test]
async fn filters_drop_items_before_the_rules_record_them_as_seen_and_count_them() {
    support::init();
    let server = MockServer::start().await;
    let wire = rss(&[
        ("1", "Lavrov speaks in Geneva"),
        ("2", "Lavrov horoscope for Monday"),
        ("3", "Sponsored: Lavrov's favourite tea"),
    ]);
    serve_feed(&server, "/wire", wire, "\"w1\"", "application/rss+xml").await;
    let sport = rss(&[
        ("s1", "Lavrov watches the football final"),
        ("s2", "Lavrov plays tennis"),
    ]);
    serve_feed(&server, "/sport", sport, "\"s1\"", "application/rss+xml").await;
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"wire\"\nurl = \"{0}/wire\"\ndrop = \"horoscope\"\n\n\
             [[feeds]]\nname = \"sport\"\nurl = \"{0}/sport\"\nkeep = \"football\"\n{FILTERED}",
            server.uri()
        ),
    );
    let p = Pipeline::new(config.load()).await.expect("pipeline");
    let (wire, sport) = (p.config().feeds[0].clone(), p.config().feeds[1].clone());
    let polled = p.poll(&wire).await.expect("wire");
    assert_eq!(
        (polled.new_items, polled.dropped, polled.alerts),
        (3, 2, 1),
        "the feed's drop and the global filter each drop one"
    );
    let polled = p.poll(&sport).await.expect("sport");
    assert_eq!(
        (polled.new_items, polled.dropped, polled.alerts),
        (2, 1, 1),
        "keep lets only the football through"
    );
    p.dispatch_due(chrono::Utc::now()).await.expect("deliver");
    let mut titles: Vec<String> = support::maildir_messages(&config.dir.path().join("inbox"))
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Subject:"))
                .map(str::to_owned)
        })
        .collect();
    titles.sort();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(titles[0].contains("football") || titles[1].contains("football"));
    assert!(
        titles
            .iter()
            .all(|t| !t.contains("horoscope") && !t.contains("tennis"))
    );

    // Dropped items are seen: the next poll of the same items finds nothing new.
    let state = p.store().feed_state(&wire.id).await.expect("state");
    assert_eq!(state.expect("polled").dropped, 2);
    server.reset().await;
    let again = rss(&[
        ("1", "Lavrov speaks in Geneva"),
        ("2", "Lavrov horoscope for Monday"),
        ("3", "Sponsored: Lavrov's favourite tea"),
    ]);
    serve_feed(&server, "/wire", again, "\"w2\"", "application/rss+xml").await;
    let polled = p.poll(&wire).await.expect("wire again");
    assert_eq!((polled.new_items, polled.dropped, polled.alerts), (0, 0, 0));
    drop(p);

    let status = newshound(&config, &["status"]);
    assert!(status.contains("2 items dropped by filters"), "{status}");
    assert!(status.contains("1 items dropped by filters"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&newshound(&config, &["status", "--json"])).expect("JSON");
    let dropped: Vec<(String, u64)> = json["feeds"]
        .as_array()
        .expect("feeds")
        .iter()
        .map(|f| {
            let name = f["name"].as_str().expect("name").to_owned();
            (name, f["dropped"].as_u64().expect("dropped"))
        })
        .collect();
    assert!(dropped.contains(&("wire".into(), 2)), "{dropped:?}");
    assert!(dropped.contains(&("sport".into(), 1)), "{dropped:?}");
}

#[test]
fn test_rules_drops_what_the_filters_drop_and_explain_names_the_filter() {
    let config = TestConfig::write(
        "",
        &format!(
            "[[feeds]]\nname = \"wire\"\nurl = \"file:wire.xml\"\ndrop = \"horoscope\"\n{FILTERED}"
        ),
    );
    let wire = rss(&[
        ("1", "Lavrov speaks in Geneva"),
        ("2", "Lavrov horoscope for Monday"),
        ("3", "Sponsored: Lavrov's favourite tea"),
        ("4", "Sponsored: garden furniture"),
        ("5", "Rain in Geneva"),
    ]);
    std::fs::write(config.dir.path().join("wire.xml"), wire).expect("feed file");

    let out = config.run(&["test-rules"]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        printed.contains("wire: Lavrov speaks in Geneva"),
        "{printed}"
    );
    assert!(
        !printed.contains("horoscope") && !printed.contains("Sponsored"),
        "{printed}"
    );
    assert!(
        stderr.contains("5 items, 3 dropped by filters, 1 matched, 0 feeds failed"),
        "{stderr}"
    );

    let explained = newshound(&config, &["test-rules", "--explain"]);
    assert!(
        explained.contains(
            "wire: Lavrov horoscope for Monday\n  https://news.test/2\n  \
             dropped by the filter \"drop of feed wire\"; without it, rules: talks\n"
        ),
        "{explained}"
    );
    assert!(
        explained.contains("dropped by the filter \"no ads\"; without it, rules: talks"),
        "{explained}"
    );
    assert!(
        !explained.contains("garden"),
        "no rule would match it: {explained}"
    );

    let json = newshound(&config, &["test-rules", "--json"]);
    assert_eq!(json.lines().count(), 1, "{json}");
    assert!(json.contains("\"key\":\"1\""), "{json}");
}

/// One RSS item: guid, title, link, and a publication date `days_ago`, if any.
fn entry(guid: &str, title: &str, link: &str, days_ago: Option<i64>) -> String {
    let date = days_ago.map_or_else(String::new, |days| {
        let at = chrono::Utc::now() - chrono::Duration::days(days);
        format!("<pubDate>{}</pubDate>", at.to_rfc2822())
    });
    format!("<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>{date}</item>")
}

fn channel(entries: &[String]) -> Vec<u8> {
    format!(
        "<rss version=\"2.0\"><channel><title>t</title>{}</channel></rss>",
        entries.concat()
    )
    .into_bytes()
}

#[tokio::test]
async fn why_tells_each_fate_of_an_item_from_a_real_run() {
    support::init();
    let server = MockServer::start().await;
    let wire = channel(&[
        entry(
            "w1",
            "Lavrov speaks at the Geneva summit",
            "https://news.test/w1",
            Some(0),
        ),
        entry(
            "w2",
            "Blinken visits Paris",
            "https://news.test/w2",
            Some(0),
        ),
        entry(
            "w3",
            "Sponsored: Lavrov tea",
            "https://news.test/w3",
            Some(0),
        ),
        entry(
            "w4",
            "Lavrov in Vienna, a look back",
            "https://news.test/w4",
            Some(30),
        ),
    ]);
    // A feed's first poll keeps only what it drops: the wire's items come later.
    let seed = channel(&[entry("w0", "Seed", "https://news.test/w0", Some(0))]);
    serve_feed(&server, "/wire", seed, "\"w0\"", "application/rss+xml").await;
    let daily = channel(&[entry(
        "d1",
        "Lavrov at the summit, our report",
        "https://news.test/w1",
        Some(0),
    )]);
    serve_feed(
        &server,
        "/daily",
        daily.clone(),
        "\"d\"",
        "application/rss+xml",
    )
    .await;
    let flood: Vec<String> = (1..=6)
        .map(|n| {
            entry(
                &format!("f{n}"),
                &format!("Lavrov, part {n}"),
                &format!("https://flood.test/{n}"),
                None,
            )
        })
        .collect();
    let flood = channel(&flood);
    serve_feed(
        &server,
        "/flood",
        flood.clone(),
        "\"f\"",
        "application/rss+xml",
    )
    .await;
    let hook = support::refused_address();
    let config = TestConfig::write(
        "first_poll = \"alert\"\nflood_threshold = 5",
        &format!(
            "[[feeds]]\nname = \"wire\"\nurl = \"{0}/wire\"\nmax_age = \"7d\"\n\n\
             [[feeds]]\nname = \"daily\"\nurl = \"{0}/daily\"\n\n\
             [[feeds]]\nname = \"flood\"\nurl = \"{0}/flood\"\n\n\
             [channels.hook]\ntype = \"webhook\"\nurl = \"http://{hook}/hook\"\n\n\
             [[rules]]\nname = \"geneva\"\nquery = \"Geneva AND summit\"\nchannels = [\"hook\"]\n\
             {FILTERED}",
            server.uri()
        ),
    );
    let p = Pipeline::new(config.load()).await.expect("pipeline");
    let feeds = p.config().feeds.clone();
    p.poll(&feeds[0]).await.expect("the wire's first poll");
    server.reset().await;
    for (route, body, etag) in [
        ("/wire", wire, "\"w\""),
        ("/daily", daily, "\"d\""),
        ("/flood", flood, "\"f\""),
    ] {
        serve_feed(&server, route, body, etag, "application/rss+xml").await;
    }
    for feed in &feeds {
        p.poll(feed).await.expect("poll");
    }
    p.dispatch_due(chrono::Utc::now()).await.expect("deliver");
    drop(p);

    let why = |words: &str| newshound(&config, &["why", words]);
    let alerted = why("https://news.test/w1");
    for said in [
        "wire: Lavrov speaks at the Geneva summit",
        "key w1, first seen ",
        "talks: matched",
        "geneva: matched",
        "to inbox (talks), queued ",
        ": sent ",
        "after 1 attempt",
        "to hook (geneva), queued ",
        "pending: 1 attempts so far, the last failed: ",
        // The other feed's item with the same link is found too, merged.
        "daily: Lavrov at the summit, our report",
    ] {
        assert!(alerted.contains(said), "{said:?} not in:\n{alerted}");
    }
    assert!(
        alerted.contains("about the same story (wire: Lavrov speaks at the Geneva summit)"),
        "{alerted}"
    );
    let missed = why("Blinken Paris");
    for said in [
        "wire: Blinken visits Paris",
        "talks: not matched: no \"Lavrov\"",
        "geneva: not matched: no \"Geneva\"",
        "no alert",
    ] {
        assert!(missed.contains(said), "{said:?} not in:\n{missed}");
    }
    let filtered = why("w3");
    assert!(
        filtered.contains("dropped by the filter \"no ads\""),
        "{filtered}"
    );
    assert!(!filtered.contains("rules, as configured now"), "{filtered}");
    let old = why("Vienna");
    assert!(
        old.contains("older than max_age (7days) when first seen: recorded, never alerted"),
        "{old}"
    );
    let seed = why("w0");
    assert!(
        seed.contains("no longer known: which rules matched it and why")
            && seed.contains("of a feed's first poll, only those a filter dropped"),
        "{seed}"
    );
    let held = why("part 3");
    assert!(held.contains("held by the flood guard"), "{held}");
    assert!(held.contains("newshound replay --held"), "{held}");

    let json: serde_json::Value =
        serde_json::from_str(&newshound(&config, &["why", "--json", "Blinken"])).expect("JSON");
    let item = &json["items"][0];
    assert_eq!(item["key"], "w2");
    assert_eq!(item["rules"][1]["rule"], "talks");
    assert_eq!(item["rules"][1]["matched"], false);
    assert_eq!(item["rules"][1]["why"], "not matched: no \"Lavrov\"");

    let out = config.run(&["why", "nothing like this"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("remembers no item"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn why_says_a_first_poll_under_mark_seen_alerted_nothing_though_backfill_kept_it() {
    let config = TestConfig::write(
        "first_poll = \"mark-seen\"\nbackfill_new_rules = true",
        &format!("[[feeds]]\nname = \"wire\"\nurl = \"file:wire.xml\"\n{FILTERED}"),
    );
    std::fs::write(
        config.dir.path().join("wire.xml"),
        rss(&[("1", "Lavrov speaks in Geneva")]),
    )
    .expect("feed file");
    let p = Pipeline::new(config.load()).await.expect("pipeline");
    let wire = p.config().feeds[0].clone();
    assert_eq!(p.poll(&wire).await.expect("first poll").alerts, 0);
    drop(p);
    let why = newshound(&config, &["why", "Lavrov"]);
    assert!(
        why.contains(
            "seen on its feed's first poll, which records what a feed holds without alerting"
        ),
        "{why}"
    );
    assert!(!why.contains("talks: matched"), "{why}");
}

#[tokio::test]
async fn what_each_rule_caught_is_counted_per_day_across_midnight() {
    support::init();
    let server = MockServer::start().await;
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let before_midnight = yesterday.and_hms_opt(23, 50, 0).expect("a time").and_utc();
    serve_feed(
        &server,
        "/wire",
        rss(&[("1", "Lavrov speaks")]),
        "\"1\"",
        "application/rss+xml",
    )
    .await;
    let config = TestConfig::write(
        "first_poll = \"alert\"",
        &format!(
            "[[feeds]]\nname = \"wire\"\nurl = \"{}/wire\"\n\n\
             [[rules]]\nname = \"quiet\"\nkeywords = [\"Zanzibar\"]\nchannels = [\"inbox\"]\n{FILTERED}",
            server.uri()
        ),
    );
    let clock = newshound::daemon::Clock::fixed(before_midnight);
    let p = Pipeline::with_clock(config.load(), clock.clone())
        .await
        .expect("pipeline");
    let feed = p.config().feeds[0].clone();
    p.poll(&feed).await.expect("before midnight");
    clock.set(before_midnight + chrono::Duration::minutes(20));
    server.reset().await;
    let later = rss(&[
        ("1", "Lavrov speaks"),
        ("2", "Lavrov answers"),
        ("3", "Lavrov leaves"),
    ]);
    serve_feed(&server, "/wire", later, "\"2\"", "application/rss+xml").await;
    p.poll(&feed).await.expect("after midnight");
    let now = clock.now();
    let days = p.store().rule_days(now).await.expect("days");
    let counted: Vec<(String, chrono::NaiveDate, u64)> = days
        .iter()
        .map(|d| (d.rule.clone(), d.day.date_naive(), d.caught))
        .collect();
    let today = yesterday + chrono::Days::new(1);
    assert_eq!(
        counted,
        [("talks".into(), yesterday, 1), ("talks".into(), today, 2)]
    );
    assert_eq!(days[1].last_title, "Lavrov leaves");
    drop(p);

    let json: serde_json::Value =
        serde_json::from_str(&newshound(&config, &["status", "--json"])).expect("JSON");
    let rules = json["rules"].as_array().expect("rules");
    let quiet = &rules[0];
    assert_eq!(
        (quiet["rule"].as_str(), quiet["caught"].as_u64()),
        (Some("quiet"), Some(0))
    );
    assert_eq!(quiet["possibly_dead"], true);
    let talks = &rules[1];
    assert_eq!(talks["caught"], 3);
    assert_eq!(talks["possibly_dead"], false);
    let days = talks["days"].as_array().expect("days");
    assert_eq!(days.len(), 30);
    assert_eq!(json["rule_days"]["last"], today.to_string());
    assert_eq!((&days[28], &days[29]), (&1.into(), &2.into()));
    assert_eq!(talks["last"]["title"], "Lavrov leaves");
    let text = newshound(&config, &["status"]);
    assert!(
        text.contains("quiet: nothing caught: possibly dead"),
        "{text}"
    );
    assert!(text.contains("talks: 3 (2 today); last "), "{text}");
}

#[test]
fn rules_prints_every_rule_as_toml_that_reads_back_the_same() {
    let setup = "[[feeds]]\nname = \"wire\"\nurl = \"file:wire.xml\"\n\n\
                 [lists]\nofficials = [\"Lavrov\", \"Blinken\"]\n\n\
                 [channels.inbox]\ntype = \"maildir\"\npath = \"inbox\"\n\n\
                 [channels.me]\ntype = \"maildir\"\npath = \"me\"\n";
    let rules = r#"
[[rules]]
name = "talks"
keywords = ["Lavrov", "NATO \"summit\""]
channels = ["inbox", "me"]

[[rules]]
name = "geneva"
query = "@officials NEAR/10 Geneva AND NOT sport*"
feeds = ["wire"]
fields = ["title", "summary"]
channels = ["inbox"]
case_sensitive = true
accents = "strict"
priority = "high"

[[rules]]
name = "security"
about = "Russia and the United States negotiate over security in Europe"
like = ["Kremlin envoy meets US diplomats"]
unlike = ["A prisoner swap"]
min_score = 0.55
channels = ["me"]
"#;
    let config = TestConfig::write("", &format!("{setup}{rules}"));
    let printed = newshound(&config, &["rules"]);
    let again = TestConfig::write("", &format!("{setup}{printed}"));
    let (before, after) = (config.load(), again.load());
    assert_eq!(before.rule_specs, after.rule_specs, "{printed}");
    assert_eq!(before.routes, after.routes, "{printed}");
}
