//! The readable text of the page an item links to (its article), for rules to match
//! when a feed carries only a teaser: Mozilla's Readability as ported by dom_smoothie,
//! behind a linear check of the page's shape, since building a page's tree costs time
//! that grows with the square of its nesting.

use std::cell::Cell;

use dom_smoothie::{Config, Readability, TextMode};
use html5ever::tokenizer::{TagKind, Token, TokenSink, TokenSinkResult};

use super::html_text::tokenize;
use super::{body_text, decode};
use crate::feed::fetch::{charset_of, media_type_of};

/// Pages with more elements than this are not read: a long article has a few
/// thousand.
pub const MAX_ELEMENTS: usize = 20_000;
/// Pages whose elements nest deeper than this are not read: real pages stay far below.
pub const MAX_DEPTH: usize = 128;

/// Why a page gave no article text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArticleError {
    #[error("not a web page or text but {0}")]
    NotHtml(String),
    #[error("no readable article on the page")]
    Unreadable,
    #[error("the page is too complex to read ({0})")]
    TooComplex(String),
}

/// The readable text of an HTML page fetched from `url`, whitespace collapsed and cut
/// like an item's content. `content_type` is what the server said the page is.
pub fn readable_text(
    page: &[u8],
    content_type: Option<&str>,
    url: &url::Url,
) -> Result<String, ArticleError> {
    let media = content_type.and_then(media_type_of);
    let charset = content_type
        .and_then(charset_of)
        .or_else(|| meta_charset(page));
    let html = decode::decode(page, charset.as_deref());
    match media.as_deref() {
        None | Some("text/html" | "application/xhtml+xml") => {}
        // Plain text is read as it is.
        Some("text/plain") => return non_empty(&html),
        Some(other) => return Err(ArticleError::NotHtml(other.to_owned())),
    }
    let shape = tokenize(&html, Shape::default(), Shape::within_limits);
    if !shape.within_limits() {
        return Err(ArticleError::TooComplex(format!(
            "more than {MAX_ELEMENTS} elements or nested deeper than {MAX_DEPTH}"
        )));
    }
    let config = Config {
        max_elements_to_parse: MAX_ELEMENTS,
        text_mode: TextMode::Formatted,
        ..Config::default()
    };
    let mut reader = Readability::new(html.as_ref(), Some(url.as_str()), Some(config))
        .map_err(|_| ArticleError::Unreadable)?;
    let article = reader.parse().map_err(|_| ArticleError::Unreadable)?;
    non_empty(&article.text_content)
}

/// `text` with whitespace collapsed and cut like an item's content, unless empty.
fn non_empty(text: &str) -> Result<String, ArticleError> {
    let text = body_text(crate::model::collapse_whitespace(text));
    if text.is_empty() {
        return Err(ArticleError::Unreadable);
    }
    Ok(text)
}

/// The charset a page declares in a `<meta>` of its first kilobyte
/// (`<meta charset="…">` or the `http-equiv` form), lowercase.
fn meta_charset(page: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&page[..page.len().min(1024)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let name: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// How many elements a page has and how deep they nest, as a tokenizer sees them.
#[derive(Default)]
struct Shape {
    elements: Cell<usize>,
    depth: Cell<usize>,
    deepest: Cell<usize>,
}

impl Shape {
    fn within_limits(&self) -> bool {
        self.elements.get() <= MAX_ELEMENTS && self.deepest.get() <= MAX_DEPTH
    }
}

impl TokenSink for Shape {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        // Elements that close themselves or are closed by their next sibling do not
        // make a page deeper.
        let nests = !tag.self_closing && !is_void(&tag.name) && !closes_implicitly(&tag.name);
        match tag.kind {
            TagKind::StartTag => {
                self.elements.set(self.elements.get() + 1);
                if nests {
                    self.depth.set(self.depth.get() + 1);
                    self.deepest.set(self.deepest.get().max(self.depth.get()));
                }
            }
            TagKind::EndTag if nests => self.depth.set(self.depth.get().saturating_sub(1)),
            TagKind::EndTag => {}
        }
        TokenSinkResult::Continue
    }
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

fn closes_implicitly(name: &str) -> bool {
    matches!(
        name,
        "p" | "li" | "dt" | "dd" | "option" | "tr" | "td" | "th" | "rt" | "rp"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> url::Url {
        "https://news.example.org/2026/12/story"
            .parse()
            .expect("url")
    }

    fn page(body: &str) -> String {
        format!(
            "<!doctype html><html><head><title>Story</title></head><body>\
             <nav><a href=/>Home</a> <a href=/world>World</a></nav>{body}\
             <footer>Copyright the publisher</footer></body></html>"
        )
    }

    fn paragraphs(n: usize, text: &str) -> String {
        (0..n)
            .map(|i| format!("<p>{text}, paragraph {i} of a long report on the talks.</p>"))
            .collect()
    }

    #[test]
    fn the_article_is_read_without_the_pages_navigation() {
        let body = format!(
            "<article><h1>Talks</h1>{}<p>Lavrov met the envoy on Friday.</p></article>",
            paragraphs(8, "The ministers spoke at length")
        );
        let text =
            readable_text(page(&body).as_bytes(), Some("text/html"), &url()).expect("readable");
        assert!(text.contains("Lavrov met the envoy on Friday."), "{text}");
        assert!(!text.contains("Copyright the publisher"), "{text}");
        assert!(
            text.contains("paragraph 0 of a long report on the talks. The ministers"),
            "paragraphs stay apart: {text}"
        );
    }

    #[test]
    fn a_page_in_a_legacy_charset_is_decoded_by_its_meta_tag() {
        let body = format!(
            "<article>{}<p>Caf\u{e9} talks in Z\u{fc}rich.</p></article>",
            paragraphs(8, "Delegates met")
        );
        let html = page(&body).replace("<head>", "<head><meta charset=\"iso-8859-1\">");
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&html);
        let text = readable_text(&bytes, Some("text/html"), &url()).expect("readable");
        assert!(text.contains("Caf\u{e9} talks in Z\u{fc}rich."), "{text}");
    }

    #[test]
    fn what_is_not_a_readable_page_says_why() {
        assert_eq!(
            readable_text(b"%PDF-1.7", Some("application/pdf"), &url()),
            Err(ArticleError::NotHtml("application/pdf".into()))
        );
        assert_eq!(
            readable_text(b"Lavrov  met\n the envoy.", Some("text/plain"), &url()),
            Ok("Lavrov met the envoy.".into())
        );
        assert_eq!(
            readable_text(b"<html><body></body></html>", None, &url()),
            Err(ArticleError::Unreadable)
        );
        let deep = "<div>".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            readable_text(page(&deep).as_bytes(), None, &url()),
            Err(ArticleError::TooComplex(_))
        ));
        let wide = "<span>x</span>".repeat(MAX_ELEMENTS + 1);
        assert!(matches!(
            readable_text(page(&wide).as_bytes(), None, &url()),
            Err(ArticleError::TooComplex(_))
        ));
    }

    #[test]
    fn unclosed_paragraphs_do_not_count_as_nesting() {
        let body = format!("<div>{}</div>", "<p>Talks went on. ".repeat(MAX_DEPTH * 2));
        assert!(readable_text(page(&body).as_bytes(), None, &url()).is_ok());
    }
}
