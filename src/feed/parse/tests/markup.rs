//! HTML to text, ill-formed XML read once repaired, Atom 0.3, quoted HTML.

use super::*;

/// Regression: HTML-to-text built a tree and cost the square of the nesting depth
/// (this item, 1.4 MB of `<div>`s 100,000 deep: ~32 s of CPU in a release build, many
/// minutes in a test build). Text now comes from one pass of an HTML tokenizer.
#[test]
fn deeply_nested_html_is_read_in_one_pass() {
    let depth = 100_000;
    let nested = format!("{}NATO{}", "<div>".repeat(depth), "</div>".repeat(depth));
    let soup = "<a href=x><b><i>Lavrov <p>said <td>NATO</b> <table><u>x</a></i><font><tr>"
        .repeat(depth / 10);
    let rss = format!(
        "<rss version=\"2.0\"><channel><title>t</title><item><guid>1</guid><title>deep</title>\
         <description><![CDATA[{nested}]]></description></item><item><guid>2</guid>\
         <title>soup</title><description><![CDATA[{soup}]]></description></item>\
         </channel></rss>"
    );
    let items = parse(rss.as_bytes(), None).expect("parses").items;
    assert_eq!(items[0].summary, "NATO");
    assert!(
        items[1]
            .summary
            .starts_with("Lavrov said NATO x Lavrov said NATO x")
    );
}

#[test]
fn html_text_keeps_what_a_reader_sees() {
    let cases = [
        ("a <b>NA</b>TO b", "a NATO b"),
        (
            "<p>one</p><p>two</p>two<br>three<li>four",
            "one two two three four",
        ),
        ("<s>waste</s> spend 3<sup>rd</sup>", "waste spend 3rd"),
        ("<img src=x alt=\"a map\"> <img src=pixel.gif>", "a map"),
        (
            "x<script>var Blinken = '</p>';</script>y<style>p{}</style>z",
            "xyz",
        ),
        ("<title>page</title>body", "body"),
        (
            "AT&T &amp; &lt;b&gt; &rsquo;&#x41;&#66; 1 < 2",
            "AT&T & <b> \u{2019}AB 1 < 2",
        ),
        ("<script/>after", "after"),
        ("<!-- hidden --><![CDATA[x]]>shown", "shown"),
        ("unclosed <a href=\"x", "unclosed"),
    ];
    for (html, text) in cases {
        assert_eq!(html_to_text(html, usize::MAX), text, "{html}");
    }
}

/// Reading stops once the text is long enough to be cut, and what is kept is exactly
/// what reading everything would have kept.
#[test]
fn html_text_stops_reading_past_the_cap() {
    let html = "<p>Лавров  met <b>Blinken</b>\n\n</p>".repeat(50_000);
    let whole = body_text(html_to_text(&html, usize::MAX));
    let capped = html_to_text(&html, MAX_TEXT_BYTES);
    assert!(capped.len() < MAX_TEXT_BYTES + 2 * html_text::CHUNK_BYTES);
    assert_eq!(body_text(capped), whole);
}

/// Regression: one stray `&`, an HTML entity XML does not define, a stray end tag or an
/// element left open made feed-rs reject the document, and every item of the feed was
/// lost until the publisher fixed it.
#[test]
fn ill_formed_xml_is_read_where_the_intent_is_clear() {
    let rss = "<rss version=\"2.0\"><channel><title>AT&T news</title>\n\
        <item><guid>1</guid><title>AT&T and NATO</title><link>https://x.test/?a=1&b=2</link></item>\n\
        <item><guid>2</guid><title>Caf&eacute;&nbsp;Lavrov&rsquo;s &#X41;&#0;</title>\
        <description>a</b> b</description></item>\n\
        <item><guid>3</guid><title>unclosed<description>x</item>\n\
        <item><guid>4</guid><title>closed</title></item></channel></rss>";
    let feed = parse(rss.as_bytes(), None).expect("repaired");
    assert!(feed.repaired.is_some(), "the recovery is reported");
    assert_eq!(feed.title.as_deref(), Some("AT&T news"));
    let items = &feed.items;
    assert_eq!(items.len(), 4);
    assert_eq!(items[0].title, "AT&T and NATO");
    assert_eq!(items[0].link.as_deref(), Some("https://x.test/?a=1&b=2"));
    assert_eq!(items[1].title, "Café Lavrov’s A\u{FFFD}");
    assert_eq!(items[1].summary, "a b");
    assert_eq!(items[2].key.0, "3");
    assert_eq!(items[3].title, "closed");
    let cut_short = &rss[..rss.len() - "</item></channel></rss>".len()];
    assert!(
        parse(cut_short.as_bytes(), None).is_err(),
        "a document cut short is refused"
    );
    let well_formed = parse(&fixture("rss20.xml"), None).expect("parses");
    assert_eq!(well_formed.repaired, None);
}

/// Regression: a real Engadget feed, valid XML, was refused whole ("missing text") over
/// an empty `<media:credit><![CDATA[]]></media:credit>`-style element.
#[test]
fn empty_media_text_elements_do_not_lose_the_feed() {
    let rss = "<rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel>\
        <title>t</title><item><guid>1</guid><title>Lavrov</title>\
        <media:content url=\"https://x.test/a.jpg\" medium=\"image\">\
        <media:credit><![CDATA[]]></media:credit><media:description><![CDATA[]]></media:description>\
        <media:title></media:title></media:content></item></channel></rss>";
    let feed = parse(rss.as_bytes(), None).expect("read");
    assert_eq!(titles(&feed), ["Lavrov"]);
}

/// Regression: an Atom 0.3 feed (`http://purl.org/atom/ns#`) gave no items and no error.
#[test]
fn atom_03_feeds_are_read_as_atom() {
    let atom = r#"<?xml version="1.0" encoding="utf-8"?>
        <feed version="0.3" xmlns="http://purl.org/atom/ns#">
          <title>Old blog</title><tagline>t</tagline>
          <link rel="alternate" type="text/html" href="https://old.test/"/>
          <entry>
            <title type="text/plain">Lavrov in Geneva</title>
            <link rel="alternate" type="text/html" href="https://old.test/1"/>
            <id>tag:old.test,2004:1</id>
            <issued>2004-01-21T11:35:00Z</issued><modified>2004-01-22T11:35:00Z</modified>
            <summary type="text/html" mode="escaped">&lt;b&gt;NATO&lt;/b&gt; talks</summary>
            <content type="application/xhtml+xml" mode="xml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Blinken <i>too</i></p></div></content>
          </entry>
        </feed>"#;
    let feed = parse(atom.as_bytes(), None).expect("read");
    assert_eq!(feed.title.as_deref(), Some("Old blog"));
    let item = &feed.items[0];
    assert_eq!(item.title, "Lavrov in Geneva");
    assert_eq!(item.key.0, "tag:old.test,2004:1");
    assert_eq!(item.link.as_deref(), Some("https://old.test/1"));
    assert_eq!(item.summary, "NATO talks");
    assert_eq!(item.content, "Blinken too");
    assert_eq!(
        item.published.map(|d| d.to_rfc3339()),
        Some("2004-01-21T11:35:00+00:00".into())
    );
}

/// Regression: the HTML part kept the feed's remote images, so tracking pixels loaded
/// when the mail was opened. Images are dropped (the item's link shows them).
#[test]
fn quoted_html_loads_no_remote_image() {
    let html = "<p>Lavrov <img src=\"https://tracker.test/p.gif\" width=\"1\" height=\"1\">\
                met <img src=\"/map.png\" alt=\"a map of Geneva\"> Blinken\
                <picture><source srcset=\"https://tracker.test/s.webp\"></picture></p>";
    let item = Item {
        key: crate::model::ItemKey("k".into()),
        title: "t".into(),
        link: Some("https://news.test/story".into()),
        published: None,
        summary: String::new(),
        content: String::new(),
        author: String::new(),
        categories: String::new(),
        html: Some(html.into()),
        article: String::new(),
    };
    let quoted = excerpt(&item).expect("an excerpt");
    assert!(!quoted.contains("<img"), "{quoted}");
    assert!(!quoted.contains("srcset"), "{quoted}");
    assert_eq!(quoted, "<p>Lavrov met  Blinken</p>");
}
