//! Feeds: their intervals, ages and HTTP options.

use super::*;

#[test]
fn a_web_feed_inheriting_a_too_short_poll_interval_names_both() {
    let text = "[daemon]\npoll_interval = \"10s\"\n\n[[feeds]]\nname = \"local\"\nurl = \"file:a.xml\"\n\n\
                [[feeds]]\nname = \"wire\"\nurl = \"https://wire.example.org/rss\"\n";
    let err = load(text, &[]).expect_err("too often for the web");
    assert_eq!(
        err.to_string(),
        "/etc/nh/newshound.toml:2: daemon.poll_interval: 10s is under the 30s minimum for a feed \
         on the web (feeds[1], wire, has no interval of its own); did you mean minutes, like \"5m\"?"
    );
    let typo = "[[feeds]]\nname = \"local\"\nurl = \"file:a.xml\"\ninterval = \"1ns\"\n";
    assert_eq!(
        load(typo, &[])
            .expect_err("too often even for a file")
            .to_string(),
        "/etc/nh/newshound.toml:4: feeds[0].interval: 1ns is under the 100ms minimum"
    );
    let files_only =
        "[daemon]\npoll_interval = \"10s\"\n\n[[feeds]]\nname = \"local\"\nurl = \"file:a.xml\"\n";
    assert!(
        load(files_only, &[]).is_ok(),
        "a local file may be read often"
    );
}

#[test]
fn max_age_is_inherited_by_feeds_and_must_be_more_than_zero() {
    let text = "[daemon]\nmax_age = \"7d\"\n\n[[feeds]]\nname = \"a\"\nurl = \"file:a.xml\"\n\n\
                [[feeds]]\nname = \"b\"\nurl = \"file:b.xml\"\nmax_age = \"1h\"\n";
    let config = load(text, &[]).expect("valid");
    let ages: Vec<Option<u64>> = config
        .feeds
        .iter()
        .map(|f| f.max_age.map(|a| a.as_secs()))
        .collect();
    assert_eq!(ages, [Some(7 * 24 * 3600), Some(3600)]);
    let none = load("[[feeds]]\nname = \"a\"\nurl = \"file:a.xml\"\n", &[]).expect("valid");
    assert_eq!(none.feeds[0].max_age, None, "no limit by default");
    let err = load(&text.replace("\"1h\"", "\"0s\""), &[]).expect_err("zero");
    assert!(
        err.to_string()
            .contains("feeds[1].max_age: must be more than 0s"),
        "{err}"
    );
}

/// How a feed is asked for: the daemon's user agent, headers and proxy as defaults, a
/// feed's own over them (headers added, its own winning), basic auth per feed with the
/// password from the environment or a file, header values from either too.

#[test]
fn feeds_take_http_options_from_the_daemon_and_their_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("token"), "t-file\n").expect("token");
    let text = "[daemon]\nuser_agent = \"watcher/2\"\nproxy = \"http://proxy.internal:3128\"\n\
                headers = { Accept = \"application/rss+xml\", X-Team = \"news\" }\n\n\
                [[feeds]]\nname = \"open\"\nurl = \"https://a.example.org/rss\"\n\n\
                [[feeds]]\nname = \"private\"\nurl = \"https://b.example.org/rss\"\n\
                username = \"reader\"\npassword_env = \"FEED_PW\"\nproxy = \"socks5://127.0.0.1:1080\"\n\
                headers = { X-Team = \"desk\", X-Api-Key = { env = \"API_KEY\" }, X-Token = { file = \"token\" } }\n";
    let config = Config::from_toml(
        &dir.path().join("n.toml"),
        text,
        &env(&[("FEED_PW", "s3cret"), ("API_KEY", "k-1")]),
    )
    .expect("valid");
    let (open, private) = (&config.feeds[0].request, &config.feeds[1].request);
    assert_eq!(open.user_agent.as_deref(), Some("watcher/2"));
    assert_eq!(open.proxy.as_deref(), Some("http://proxy.internal:3128"));
    assert_eq!(open.basic_auth, None);
    assert_eq!(
        private.basic_auth,
        Some(("reader".to_owned(), "s3cret".to_owned()))
    );
    assert_eq!(private.proxy.as_deref(), Some("socks5://127.0.0.1:1080"));
    let headers: Vec<(&str, &str)> = private
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        headers,
        [
            ("Accept", "application/rss+xml"),
            ("X-Api-Key", "k-1"),
            ("X-Team", "desk"),
            ("X-Token", "t-file"),
        ]
    );
    let shown = format!("{private:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("k-1"),
        "{shown}"
    );
}

#[test]
fn bad_http_options_are_refused_with_what_to_write() {
    for (feed, expected) in [
        (
            "url = \"https://reader:pw@b.example.org/rss\"",
            "feeds[0].url: credentials in the URL are not used; write username = \"…\" and password_file or password_env in the feed instead",
        ),
        (
            "url = \"https://b.example.org/rss\"\nusername = \"reader\"",
            "feeds[0].username: a username needs password_file or password_env",
        ),
        (
            "url = \"https://b.example.org/rss\"\nproxy = \"ftp://proxy\"",
            "feeds[0].proxy: \"ftp://proxy\" is not a proxy URL",
        ),
        (
            "url = \"https://b.example.org/rss\"\nheaders = { \"Bad Name\" = \"x\" }",
            "feeds[0].headers.Bad Name: \"Bad Name\" is not a header name",
        ),
        (
            "url = \"https://b.example.org/rss\"\nheaders = { X-Key = { env = \"UNSET_VAR\" } }",
            "feeds[0].headers.X-Key.env: environment variable UNSET_VAR is not set",
        ),
    ] {
        let text = format!("[[feeds]]\nname = \"f\"\n{feed}\n");
        refused_with(&text, &[], expected);
    }
}
