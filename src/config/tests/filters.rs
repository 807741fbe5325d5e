//! `[[filters]]` and each feed's `drop` and `keep`.

use super::*;
use crate::model::{FeedId, Item, ItemKey};

const FEEDS: &str = r#"
[[feeds]]
name = "wire"
url = "file:wire.xml"
drop = "horoscope OR \"sponsored content\""

[[feeds]]
name = "sport"
url = "file:sport.xml"
keep = "football"

[[filters]]
name = "no ads"
drop = "advert*"
"#;

fn item(title: &str) -> Item {
    Item {
        key: ItemKey(title.to_owned()),
        title: title.to_owned(),
        link: None,
        published: None,
        summary: String::new(),
        content: String::new(),
        author: String::new(),
        categories: String::new(),
        html: None,
        article: String::new(),
    }
}

#[test]
fn global_and_per_feed_filters_drop_what_they_match_and_keep_drops_the_rest() {
    let config = load(FEEDS, &[]).expect("valid");
    let dropped = |feed: &str, title: &str| {
        config
            .filters
            .dropped_by(&FeedId(feed.into()).0, &item(title))
            .map(str::to_owned)
    };
    assert_eq!(dropped("wire", "Talks in Geneva"), None);
    assert_eq!(
        dropped("wire", "Your horoscope for Monday").as_deref(),
        Some("drop of feed wire")
    );
    assert_eq!(
        dropped("sport", "Adverts everywhere").as_deref(),
        Some("no ads"),
        "a global filter drops from every feed"
    );
    assert_eq!(dropped("sport", "Football: the final"), None);
    assert_eq!(
        dropped("sport", "Tennis: the final").as_deref(),
        Some("keep of feed sport"),
        "what keep does not match is dropped"
    );
    assert_eq!(
        dropped("wire", "Tennis: the final"),
        None,
        "keep is the sport feed's own"
    );
}

#[test]
fn a_bad_filter_is_refused_where_it_is_written() {
    let rows = [
        (
            "drop = \"advert*\"",
            "drop = \"advert AND\"",
            "/etc/nh/newshound.toml:14: filters[0].drop: \"advert AND\":",
        ),
        (
            "drop = \"horoscope OR \\\"sponsored content\\\"\"",
            "drop = \"(horoscope\"",
            "/etc/nh/newshound.toml:5: feeds[0].drop: \"(horoscope\":",
        ),
        (
            "drop = \"advert*\"",
            "feeds = [\"nowhere\"]",
            "/etc/nh/newshound.toml:12: filters[0]: a filter needs `drop = \"<query>\"` or `about = \"...\"`",
        ),
        (
            "name = \"no ads\"",
            "name = \"no ads\"\nfeeds = [\"nowhere\"]",
            "/etc/nh/newshound.toml:14: filters[0].feeds[0]: unknown feed \"nowhere\"",
        ),
        (
            "name = \"no ads\"",
            "name = \"no ads\"\nmin_score = 0.5",
            "/etc/nh/newshound.toml:14: filters[0].min_score: `min_score` belongs to a topic",
        ),
    ];
    fails_with(FEEDS, &rows, &[]);
}
