use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/feeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

fn items(name: &str) -> Vec<Item> {
    parse(&fixture(name), None)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .items
}

#[test]
fn rss20_items_get_guid_keys_and_plain_text() {
    let items = items("rss20.xml");
    assert_eq!(items.len(), 4);
    let seed = &items[0];
    assert_eq!(seed.key.0, "mt-76116");
    assert_eq!(
        seed.title,
        "Russia, U.S. Agree to Talk Security Demands Next Week"
    );
    assert_eq!(
        seed.summary,
        "Foreign Minister Sergei Lavrov and U.S. Secretary of State Antony Blinken met in \
         Geneva for talks on security guarantees, including NATO\u{2019}s eastward expansion."
    );
    assert_eq!(
        seed.published.map(|d| d.to_rfc3339()),
        Some("2022-01-21T11:35:00+00:00".into())
    );
}

/// An item keyed by its link keeps the key it had before links were unwrapped: only
/// the link shown, matched and compared changes.
#[test]
fn an_unwrapped_link_leaves_the_items_key_as_it_was() {
    let wrapped = "https://www.google.com/url?sa=t&url=https://news.example.org/a";
    let doc = format!(
        "<rss version=\"2.0\"><channel><title>t</title><item><title>Lavrov</title>\
         <link>{}</link></item></channel></rss>",
        wrapped.replace('&', "&amp;")
    );
    let item = &parse(doc.as_bytes(), None).expect("parses").items[0];
    assert_eq!(item.link.as_deref(), Some("https://news.example.org/a"));
    assert_eq!(item.key, ItemKey::derive(None, Some(wrapped), "Lavrov", ""));
}

/// A relative link is made absolute against the feed's address; absolute ones, and
/// the keys derived from the links as written, stay as they were.
#[test]
fn relative_links_are_resolved_against_the_feed_and_keys_stay() {
    let doc = "<rss version=\"2.0\"><channel><title>t</title>\
               <item><title>A</title><link>/news/1?x=1</link></item>\
               <item><title>B</title><link>https://other.example.org/2</link></item>\
               <item><title>C</title><link>3.html</link></item></channel></rss>";
    let mut feed = parse(doc.as_bytes(), None).expect("parses");
    let keys: Vec<ItemKey> = feed.items.iter().map(|i| i.key.clone()).collect();
    feed.resolve_links(
        &"https://news.example.org/feeds/rss.xml"
            .parse()
            .expect("url"),
    );
    let links: Vec<&str> = feed
        .items
        .iter()
        .filter_map(|i| i.link.as_deref())
        .collect();
    assert_eq!(
        links,
        [
            "https://news.example.org/news/1?x=1",
            "https://other.example.org/2",
            "https://news.example.org/feeds/3.html"
        ]
    );
    assert_eq!(keys[0].0, "/news/1?x=1");
    assert_eq!(
        feed.items.iter().map(|i| i.key.clone()).collect::<Vec<_>>(),
        keys
    );
}

#[test]
fn unusual_rss_versions_are_read_as_rss2() {
    let old = items("rss094.xml");
    assert_eq!(old[0].title, "Blinken\u{2019}s Geneva visit");
    assert_eq!(old[0].key.0, "https://old.example.org/blinken-geneva");
    let bare = items("rss-noversion.xml");
    assert_eq!(
        bare[0].title,
        "Ministers meet & talk \u{2019}frankly\u{2019}\u{200C}"
    );
}

#[test]
fn rss09x_and_rdf_feeds_parse() {
    assert_eq!(
        items("rss091.xml")[0].title,
        "Café owners meet NATO delegates"
    );
    assert_eq!(items("rss090.rdf")[0].title, "NATO summit scheduled");
    let rdf = items("rss10.rdf");
    assert_eq!(rdf[0].title, "Lavrov comments on talks");
    assert_eq!(rdf[0].key.0, "https://rdf.example.org/lavrov");
}

#[test]
fn atom_html_and_xhtml_become_plain_text() {
    let atom = items("atom-html.xml");
    assert_eq!(atom[0].title, "Blinken and Lavrov");
    assert_eq!(atom[0].summary, "The two met in Geneva.");
    assert_eq!(
        atom[0].content,
        "Full text: the ministers discussed security demands."
    );
    assert_eq!(atom[0].link.as_deref(), Some("https://atom.example.org/1"));
    let xhtml = items("atom-xhtml.xml");
    assert_eq!(xhtml[0].content, "Officials from NATO joined the meeting.");
}

#[test]
fn items_without_id_or_link_get_a_stable_content_hash() {
    let first = items("atom-html.xml");
    let second = items("atom-html.xml");
    assert!(first[1].key.0.starts_with("sha256:"), "{}", first[1].key);
    assert_eq!(first[1].key, second[1].key);
}

#[test]
fn json_feed_parses() {
    let json = items("feed.json");
    assert_eq!(json.len(), 2);
    assert_eq!(json[0].key.0, "json-1");
    assert_eq!(json[0].title, "Лавров встретился с Блинкеном");
    assert_eq!(json[0].content, "Переговоры прошли в Женеве.");
}

#[test]
fn windows_1251_declared_in_the_prolog_decodes() {
    let cp = items("windows-1251.xml");
    assert_eq!(cp[0].title, "ЛАВРОВ прибыл в Женеву");
}

#[test]
fn the_http_charset_decodes_a_body_without_a_declaration() {
    let body = "<rss version=\"2.0\"><channel><title>t</title><item><title>Лавров</title>\
                <guid>1</guid></item></channel></rss>";
    let (bytes, _, _) = encoding_rs::KOI8_R.encode(body);
    let feed = parse(&bytes, Some("koi8-r")).expect("decoded with the HTTP charset");
    assert_eq!(feed.items[0].title, "Лавров");
}

#[test]
fn latin1_bytes_without_any_charset_fall_back_to_windows_1252() {
    let body = b"<rss version=\"2.0\"><channel><title>t</title><item><title>Caf\xe9</title>\
                 <guid>1</guid></item></channel></rss>";
    let feed = parse(body, None).expect("windows-1252 fallback");
    assert_eq!(feed.items[0].title, "Café");
}

/// An RSS document of one item per title, prolog `prolog`, as bytes to be spliced.
fn rss_of_titles(prolog: &[u8], titles: &[&[u8]]) -> Vec<u8> {
    let mut doc = prolog.to_vec();
    doc.extend_from_slice(b"<rss version=\"2.0\"><channel><title>t</title>");
    for (i, title) in titles.iter().enumerate() {
        doc.extend_from_slice(format!("<item><guid>{i}</guid><title>").as_bytes());
        doc.extend_from_slice(title);
        doc.extend_from_slice(b"</title></item>");
    }
    doc.extend_from_slice(b"</channel></rss>");
    doc
}

fn titles(feed: &ParsedFeed) -> Vec<&str> {
    feed.items.iter().map(|i| i.title.as_str()).collect()
}

/// Regression: one invalid byte in a feed that declares UTF-8 rejected every item.
#[test]
fn one_bad_byte_in_a_utf8_feed_costs_one_character() {
    let lavrov = "Лавров в Женеве".as_bytes();
    let doc = rss_of_titles(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        &[lavrov, b"NATO \xff summit", lavrov],
    );
    let feed = parse(&doc, None).expect("decoded lossily");
    assert_eq!(
        titles(&feed),
        ["Лавров в Женеве", "NATO \u{FFFD} summit", "Лавров в Женеве"]
    );
}

/// Regression: a document without a declaration that was mostly UTF-8 was read as
/// windows-1252 whole, so a `Лавров` rule missed every item.
#[test]
fn a_mostly_utf8_document_without_a_declaration_is_utf8() {
    let doc = rss_of_titles(
        b"",
        &["Лавров".as_bytes(), b"caf\xe9", "Блинкен".as_bytes()],
    );
    let feed = parse(&doc, None).expect("parses");
    assert_eq!(titles(&feed), ["Лавров", "caf\u{FFFD}", "Блинкен"]);
}

/// Regression (Miniflux's `utf8-incorrect-prolog`): UTF-8 bytes under a prolog naming
/// another charset came out as "CafÃ©"; bytes that are valid UTF-8 are UTF-8.
#[test]
fn utf8_bytes_under_a_prolog_naming_another_charset_are_utf8() {
    let doc = rss_of_titles(
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
        &["Café".as_bytes()],
    );
    assert_eq!(titles(&parse(&doc, None).expect("parses")), ["Café"]);
    let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode("Лавров");
    let doc = rss_of_titles(b"<?xml version='1.0' encoding='windows-1251'?>", &[&cp1251]);
    assert_eq!(titles(&parse(&doc, None).expect("parses")), ["Лавров"]);
}

/// Regression: a lone surrogate escape (`\ud800`) in a JSON Feed rejected the whole
/// feed; it is one U+FFFD.
#[test]
fn a_lone_surrogate_in_a_json_feed_costs_one_character() {
    let json = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [
        {"id": "1", "title": "a \ud800 b \udc00 c \\ud800 \ud83d\ude00"},
        {"id": "2", "title": "NATO"}]}"#;
    let feed = parse(json.as_bytes(), None).expect("parses");
    assert_eq!(
        titles(&feed),
        ["a \u{FFFD} b \u{FFFD} c \\ud800 😀", "NATO"]
    );
}

#[test]
fn html_pages_empty_and_truncated_bodies_are_typed_errors() {
    let html = parse(&fixture("not-a-feed.html"), None).expect_err("html page");
    assert_eq!(html.kind(), "not_a_feed");
    let empty = parse(b"", None).expect_err("empty body");
    assert_eq!(empty.kind(), "not_a_feed");
    assert!(parse(&fixture("truncated.xml"), None).is_err());
}

#[test]
fn version_attribute_is_found_only_as_a_whole_attribute() {
    assert_eq!(
        attribute(b"<rss version=\"0.93\"", b"version"),
        Some(&b"0.93"[..])
    );
    assert_eq!(
        attribute(b"<rss xversion='1' version='0.94'", b"version"),
        Some(&b"0.94"[..])
    );
    assert_eq!(attribute(b"<rss>", b"version"), None);
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if big_endian {
            &[0xFE, 0xFF]
        } else {
            &[0xFF, 0xFE]
        });
    }
    for unit in text.encode_utf16() {
        out.extend_from_slice(&if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

/// Regression: feed-rs (quick-xml) panicked on UTF-16BE documents from the feedparser
/// corpus; a panic in a poll would have stopped that feed's polling for good.
#[test]
fn utf16_documents_with_and_without_bom_parse_without_panic() {
    let doc = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss version=\"2.0\"><channel>\
               <title>t</title><item><guid>1</guid><title>Лавров</title></item></channel></rss>";
    for (big_endian, bom) in [(true, true), (true, false), (false, true), (false, false)] {
        let feed = parse(&utf16(doc, big_endian, bom), None)
            .unwrap_or_else(|e| panic!("be={big_endian} bom={bom}: {e}"));
        assert_eq!(feed.items[0].title, "Лавров", "be={big_endian} bom={bom}");
    }
}

/// Rules match the plain text extracted from HTML: entities decoded, tags gone, so
/// markup inside a word does not hide it and markup words do not match.
#[test]
fn rules_match_text_extracted_from_html() {
    use crate::rules::{Lists, RuleSet, RuleSpec};
    let html = "<p>Talks on <b>NATO</b>&rsquo;s future; <a href=\"https://x.example/Lavrov\">read</a> \
                Sergei&nbsp;Lavrov&#39;s remarks.</p><script>var Blinken = 1;</script>";
    let text = html_to_text(html, usize::MAX);
    let rules = RuleSet::compile(
        &[
            RuleSpec::query("possessive", "NATO AND \"Sergei Lavrov\""),
            RuleSpec::keywords("markup", &["Blinken", "href", "b"]),
        ],
        &Lists::new(),
    )
    .expect("rules compile");
    let item = Item {
        key: crate::model::ItemKey("k".into()),
        title: String::new(),
        link: None,
        published: None,
        summary: text.clone(),
        content: String::new(),
        author: String::new(),
        categories: String::new(),
        html: None,
        article: String::new(),
    };
    let fired: Vec<&str> = rules
        .matches("f", &item)
        .into_iter()
        .map(|m| m.rule)
        .collect();
    assert_eq!(fired, ["possessive"], "{text}");
}

#[test]
fn the_rss_ttl_is_read_in_minutes() {
    let body = b"<rss version=\"2.0\"><channel><title>t</title><ttl>30</ttl>\
                 <item><guid>1</guid><title>x</title></item></channel></rss>";
    let feed = parse(body, None).expect("parses");
    assert_eq!(feed.ttl, Some(std::time::Duration::from_secs(30 * 60)));
    assert_eq!(items("rss20.xml").len(), 4);
    assert_eq!(
        parse(&fixture("rss20.xml"), None).expect("parses").ttl,
        None
    );
}

/// Regression (hostile-input review): a raw NUL reached a `7bit` text part, ESC
/// sequences the Subject and the terminal, U+202E made "fdp.exe" show as "exe.pdf" in
/// every channel. C0 and C1 controls and the bidi overrides are dropped from feed text.
#[test]
fn control_and_direction_characters_are_dropped_from_feed_text() {
    let json = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [
        {"id": "1", "title": "A\u0000B \u001b[31mred\u001b[0m invoice \u202efdp.exe \u2066x\u2069",
         "content_text": "bell\u0007 \u0085next\u009b", "url": "https://n.example.org/\u001b1",
         "authors": [{"name": "Eve\u202d"}]}]}"#;
    let item = &parse(json.as_bytes(), None).expect("parses").items[0];
    assert_eq!(item.title, "AB [31mred[0m invoice fdp.exe x");
    assert_eq!(item.content, "bell next");
    // feed-rs already percent-encodes a JSON Feed url.
    assert_eq!(item.link.as_deref(), Some("https://n.example.org/%1B1"));
    assert_eq!(item.author, "Eve");
    let rss = b"<rss version=\"2.0\"><channel><title>t</title><item><guid>1</guid>\
                <title>NATO\x00 \x1b[2Jsummit</title><description>a\x01b</description></item></channel></rss>";
    let item = &parse(rss, None).expect("parses").items[0];
    assert_eq!(item.title, "NATO [2Jsummit");
    assert_eq!(item.summary, "ab");
}

/// Regression: a 5 MB title gave a 5-million-character Subject line and 10 MB log
/// lines. Titles, summaries and content are cut at sane lengths, on a character.
#[test]
fn titles_and_texts_are_cut_at_sane_lengths() {
    let title = "Лавров ".repeat(1_000_000);
    let summary = "NATO ".repeat(100_000);
    let rss = format!(
        "<rss version=\"2.0\"><channel><title>t</title><item><guid>1</guid>\
         <title>{title}</title><description>{summary}</description></item></channel></rss>"
    );
    let item = &parse(rss.as_bytes(), None).expect("parses").items[0];
    assert!(
        item.title.chars().count() <= MAX_TITLE_CHARS,
        "{}",
        item.title.len()
    );
    assert!(item.title.starts_with("Лавров Лавров") && item.title.ends_with('…'));
    assert!(item.summary.len() <= MAX_TEXT_BYTES + '…'.len_utf8());
    assert!(item.summary.starts_with("NATO NATO"));
}

/// Regression: a 16 MB JSON Feed of 1,000,000 tiny items peaked at 1.1 GB. Only the
/// first items of a document reach the parser; the rest are counted, not built.
#[test]
fn only_the_first_items_of_a_document_are_read() {
    let items: Vec<String> = (0..1_000_000)
        .map(|i| format!(r#"{{"id":"{i}","title":"t{i}"}}"#))
        .collect();
    let json = format!(
        r#"{{"version":"https://jsonfeed.org/version/1.1","title":"big","items":[{}]}}"#,
        items.join(",")
    );
    let feed = parse(json.as_bytes(), None).expect("parses");
    assert_eq!(feed.items.len(), DEFAULT_MAX_ITEMS_PER_FEED);
    assert_eq!(feed.dropped, 1_000_000 - DEFAULT_MAX_ITEMS_PER_FEED);
    assert_eq!(feed.items[0].key.0, "0");
    assert_eq!(feed.title.as_deref(), Some("big"));

    // RSS 2.0 with channel elements after the items, Atom, RSS 1.0 (items beside the
    // channel), and a self-closed item: the first three are kept, the rest of the
    // document too.
    let rss = "<rss version=\"2.0\"><channel><title>t</title>\
               <item><guid>1</guid><title>a</title></item><item><guid>2</guid><title>b</title></item>\
               <item><guid>3</guid><title>c</title></item><item><guid>4</guid><title>d</title></item>\
               <item/><ttl>30</ttl></channel></rss>";
    let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title><id>f</id>\
                <entry><id>1</id><title>a</title></entry><entry><id>2</id><title>b</title></entry>\
                <entry><id>3</id><title>c</title></entry><entry><id>4</id><title>d</title></entry></feed>";
    let rdf = "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
               xmlns=\"http://purl.org/rss/1.0/\"><channel><title>t</title></channel>\
               <item rdf:about=\"1\"><title>a</title><link>https://x.example/1</link></item>\
               <item rdf:about=\"2\"><title>b</title><link>https://x.example/2</link></item>\
               <item rdf:about=\"3\"><title>c</title><link>https://x.example/3</link></item>\
               <item rdf:about=\"4\"><title>d</title><link>https://x.example/4</link></item></rdf:RDF>";
    for (doc, dropped) in [(rss, 2), (atom, 1), (rdf, 1)] {
        let feed = parse_at_most(doc.as_bytes(), None, 3).expect("parses");
        let titles: Vec<&str> = feed.items.iter().map(|i| i.title.as_str()).collect();
        assert_eq!(titles, ["a", "b", "c"], "{doc}");
        assert_eq!(feed.dropped, dropped, "{doc}");
    }
    assert_eq!(
        parse_at_most(rss.as_bytes(), None, 3).expect("parses").ttl,
        Some(std::time::Duration::from_secs(30 * 60)),
        "what follows the items is kept"
    );
    // Under the cap, nothing is cut; a broken document is left for the parser to refuse.
    assert_eq!(
        parse_at_most(rss.as_bytes(), None, 10)
            .expect("parses")
            .dropped,
        0
    );
    assert!(parse_at_most(&fixture("truncated.xml"), None, 1).is_err());

    // Items under a prefix are counted too, before any reading decides to cut.
    let prefixed = "<a:feed xmlns:a=\"http://www.w3.org/2005/Atom\"><a:entry><a:id>1</a:id></a:entry>\
                    <a:entry><a:id>2</a:id></a:entry><a:entry/></a:feed>";
    let (kept, dropped) = trim::first_items(prefixed.as_bytes(), 1);
    assert_eq!(dropped, 2);
    assert_eq!(
        std::str::from_utf8(&kept).expect("UTF-8"),
        "<a:feed xmlns:a=\"http://www.w3.org/2005/Atom\"><a:entry><a:id>1</a:id></a:entry></a:feed>"
    );
}

mod markup;

proptest::proptest! {
    /// `has_controls` reads bytes instead of characters; it must find exactly the
    /// characters `unwanted` names, next to quotes and dashes that share their bytes.
    #[test]
    fn controls_are_found_from_bytes_as_from_characters(
        text in "[a\t\n\r\u{0}\u{1f}\u{7f}\u{80}\u{9f}\u{a0}\u{e9}\u{2019}\u{2014}\u{2029}\u{202a}\u{202e}\u{202f}\u{2065}\u{2066}\u{2069}\u{206a}\u{3000}\u{1f600}]{0,12}",
    ) {
        proptest::prop_assert_eq!(has_controls(text.as_bytes()), text.chars().any(unwanted));
    }
}
