use super::*;

#[test]
fn key_prefers_guid_then_link_then_hash() {
    assert_eq!(ItemKey::derive(Some("g1"), Some("l"), "t", "c").0, "g1");
    assert_eq!(ItemKey::derive(Some("  "), Some("l"), "t", "c").0, "l");
    let hashed = ItemKey::derive(None, None, "Title", "Body");
    assert!(hashed.0.starts_with("sha256:"));
    assert_eq!(hashed.0.len(), "sha256:".len() + 64);
}

#[test]
fn hashed_key_is_stable_and_ignores_whitespace_layout() {
    let a = ItemKey::derive(None, None, "A  title", "some\n body");
    let b = ItemKey::derive(None, None, "A title", "some body");
    assert_eq!(a, b);
    // Pinned so that a change of hash or normalisation, which would re-alert every
    // item without guid and link, cannot slip in unnoticed. It is
    // `printf 'A title\nsome body' | sha256sum`.
    assert_eq!(
        a.0,
        "sha256:e85e9755d2c11925acefe51fe2822faf8815d676b4db7b64fa7b12be0bd53d1e"
    );
}

#[test]
fn snippet_marks_its_highlights() {
    let snippet = Snippet {
        text: "Lavrov met Blinken".into(),
        highlights: vec![(0, 6), (11, 18)],
    };
    assert_eq!(snippet.marked("[", "]"), "[Lavrov] met [Blinken]");
    assert_eq!(
        snippet.segments(),
        [("Lavrov", true), (" met ", false), ("Blinken", true)]
    );
}

#[test]
fn story_links_ignore_tracking_fragments_www_and_scheme() {
    let keys = |link: &str| StoryKeys::of(Some(link), "t").link;
    let plain = keys("https://example.org/world/story-1?id=7");
    assert_eq!(plain.as_deref(), Some("example.org/world/story-1?id=7"));
    for variant in [
        "http://www.example.org/world/story-1/?id=7",
        "https://EXAMPLE.org/world/story-1?utm_source=rss&id=7&utm_medium=feed#top",
        "https://example.org/world/story-1?fbclid=abc&id=7",
    ] {
        assert_eq!(keys(variant), plain, "{variant}");
    }
    assert_ne!(keys("https://example.org/world/story-1?id=8"), plain);
    assert_eq!(keys("javascript:alert(1)"), None);
}

#[test]
fn story_titles_ignore_case_and_punctuation_but_not_short_titles() {
    let a = StoryKeys::of(None, "Lavrov and Blinken meet in Geneva!");
    let b = StoryKeys::of(None, "  LAVROV and Blinken: meet in Geneva ");
    assert_eq!(a.title, b.title);
    assert_eq!(
        a.title.as_deref(),
        Some("lavrov and blinken meet in geneva")
    );
    assert_eq!(StoryKeys::of(None, "Live updates").title, None);
}

#[test]
fn time_arithmetic_saturates_instead_of_overflowing() {
    let at = DateTime::from_timestamp(1000, 0).expect("time");
    let minute = std::time::Duration::from_secs(60);
    assert_eq!(later(at, minute).timestamp(), 1060);
    assert_eq!(earlier(at, minute).timestamp(), 940);
    assert_eq!(
        later(at, std::time::Duration::MAX),
        DateTime::<Utc>::MAX_UTC
    );
    assert_eq!(
        earlier(at, std::time::Duration::MAX),
        DateTime::<Utc>::MIN_UTC
    );
}

#[test]
fn hashed_key_separates_title_from_content() {
    assert_ne!(
        ItemKey::derive(None, None, "ab", "c"),
        ItemKey::derive(None, None, "a", "bc")
    );
}

proptest::proptest! {
    /// Hashed item keys go through `collapse_whitespace`: it must keep giving what
    /// the words joined by one space gave, for any text, or keys change on upgrade.
    #[test]
    fn collapse_whitespace_is_the_words_joined_by_one_space(
        text in "[ a\u{00e9}\t\n\r\u{000b}\u{000c}\u{001c}\u{001f}\u{00a0}\u{2003}\u{3000}b\u{0085}\u{2028}\u{1680}\u{180e}\u{200b}\u{202f}\u{205f}\u{2060}\u{00ad}\u{3001}\u{043b}\u{1f600}]{0,40}",
    ) {
        let words: Vec<&str> = text.split_whitespace().collect();
        proptest::prop_assert_eq!(collapse_whitespace(&text), words.join(" "));
    }
}

#[test]
fn an_alerts_example_is_its_title_then_the_passage_it_quotes() {
    let alert = |title: &str, passage: &str| {
        Alert::from(Notice {
            feed: FeedId("news".into()),
            key: ItemKey("1".into()),
            title: title.into(),
            link: None,
            rules: vec!["talks".into()],
            text: passage.into(),
            at: DateTime::UNIX_EPOCH,
        })
    };
    assert_eq!(
        alert("Talks in Geneva", " The ministers met for an hour. ").example(),
        "Talks in Geneva — The ministers met for an hour."
    );
    assert_eq!(alert("Talks in Geneva", "").example(), "Talks in Geneva");
    assert_eq!(
        alert("Talks in Geneva", "Geneva").example(),
        "Talks in Geneva",
        "a passage of the title adds nothing"
    );
}
