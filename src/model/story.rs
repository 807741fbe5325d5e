//! When two items are one story: their links without tracking parameters, or their
//! titles without case and punctuation.

use super::collapse_whitespace;

/// What makes two items the same story: the link without tracking parameters, or the
/// title in lower case without punctuation (only for titles long enough to be
/// distinctive). Either one matching is enough.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoryKeys {
    pub link: Option<String>,
    pub title: Option<String>,
}

/// Query parameters that only say where a click came from.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "yclid",
    "_hsenc",
    "_hsmi",
    "ref",
    "ref_src",
    "cmpid",
    "ncid",
    "ito",
    "at_medium",
    "at_campaign",
];

/// Titles shorter than this many words are too generic ("Update", "Live") to say
/// that two items are one story.
const MIN_TITLE_WORDS: usize = 4;

impl StoryKeys {
    pub fn of(link: Option<&str>, title: &str) -> StoryKeys {
        StoryKeys {
            link: link.and_then(canonical_link),
            title: Some(normalised_title(title))
                .filter(|t| t.split(' ').count() >= MIN_TITLE_WORDS),
        }
    }
}

/// `link` with the scheme's default port, the fragment, `www.`, a trailing slash and
/// tracking parameters (`utm_*` and the like) removed; the remaining query parameters
/// sorted. `None` for what is not an http(s) URL.
fn canonical_link(link: &str) -> Option<String> {
    let mut url = url::Url::parse(link.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_fragment(None);
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !k.starts_with("utm_") && !TRACKING_PARAMS.contains(&k.as_str())
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    if params.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(params);
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    let path = url.path().trim_end_matches('/');
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{host}{path}{query}"))
}

/// Lower case, letters and digits only, single spaces.
fn normalised_title(title: &str) -> String {
    let words: String = title
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    collapse_whitespace(&words)
}
