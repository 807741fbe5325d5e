//! Plain text of feed HTML, in time linear in its length whatever its shape: an HTML
//! tokenizer reads the markup once and no tree is built, so a thousand nested `<div>`s
//! or unclosed tags cost no more than the same bytes of flat text.

use std::cell::{Cell, RefCell};

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use crate::model::{collapse_whitespace, floor_char_boundary};

/// How much markup the tokenizer reads between checks of the text's length.
pub(super) const CHUNK_BYTES: usize = 16 * 1024;

/// Plain text of an HTML fragment (also right for plain text, whose only HTML-like
/// parts are character references): tags dropped, references decoded, images as their
/// alt text, block elements and line breaks read as spaces, scripts and styles
/// dropped, whitespace collapsed.
///
/// Reading stops once the text holds more than `max_bytes` bytes that are not
/// whitespace, so a caller that keeps only the first `max_bytes` of the text gets
/// exactly what reading the whole fragment would have given.
pub fn html_to_text(html: &str, max_bytes: usize) -> String {
    if memchr::memchr2(b'<', b'&', html.as_bytes()).is_none() {
        return collapse_whitespace(html);
    }
    let sink = tokenize(html, TextSink::default(), |sink| {
        sink.solid.get() <= max_bytes
    });
    collapse_whitespace(&sink.text.take())
}

/// Runs an HTML tokenizer over `html` in chunks of [`CHUNK_BYTES`] into `sink`, for
/// as long as `more` says after each chunk; returns the sink.
pub(super) fn tokenize<S: TokenSink>(html: &str, sink: S, more: impl Fn(&S) -> bool) -> S {
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    let mut rest = html;
    while !rest.is_empty() && more(&tokenizer.sink) {
        let mut cut = floor_char_boundary(rest, CHUNK_BYTES.min(rest.len()));
        if cut == 0 {
            cut = rest.len();
        }
        input.push_back(StrTendril::from_slice(&rest[..cut]));
        // The sinks never ask the tokenizer to pause, so each feed reads all it is given.
        let _ = tokenizer.feed(&input);
        rest = &rest[cut..];
    }
    tokenizer.end();
    tokenizer.sink
}

/// Collects the text a reader would see.
#[derive(Default)]
struct TextSink {
    text: RefCell<String>,
    /// Bytes of `text` that are not whitespace.
    solid: Cell<usize>,
    /// Inside an element whose content is not shown (script, style, …).
    hidden: Cell<bool>,
}

impl TextSink {
    fn push(&self, text: &str) {
        let solid = text.bytes().filter(|b| !b.is_ascii_whitespace()).count();
        self.solid.set(self.solid.get() + solid);
        self.text.borrow_mut().push_str(text);
    }

    /// A break between blocks: a space, unless the text already ends in one.
    fn separate(&self) {
        let mut text = self.text.borrow_mut();
        if !text.ends_with(|c: char| c.is_whitespace()) {
            text.push(' ');
        }
    }
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let tag = match token {
            Token::CharacterTokens(text) if !self.hidden.get() => {
                self.push(&text);
                return TokenSinkResult::Continue;
            }
            Token::TagToken(tag) => tag,
            _ => return TokenSinkResult::Continue,
        };
        let name: &str = &tag.name;
        if tag.kind == TagKind::EndTag {
            if is_hidden(name) {
                self.hidden.set(false);
            } else if is_block(name) {
                self.separate();
            }
            return TokenSinkResult::Continue;
        }
        if is_block(name) {
            self.separate();
        }
        if name == "img"
            && let Some(alt) = tag.attrs.iter().find(|a| &*a.name.local == "alt")
        {
            self.push(&alt.value);
        }
        // The tokenizer reads these elements' content as text, not markup, as a browser
        // does; hidden ones are skipped up to their end tag.
        if tag.self_closing {
            return TokenSinkResult::Continue;
        }
        let raw = match name {
            "script" => RawKind::ScriptData,
            "style" | "iframe" | "noembed" | "noframes" | "xmp" => RawKind::Rawtext,
            "textarea" | "title" => RawKind::Rcdata,
            "plaintext" => return TokenSinkResult::Plaintext,
            _ => return TokenSinkResult::Continue,
        };
        if is_hidden(name) {
            self.hidden.set(true);
        }
        TokenSinkResult::RawData(raw)
    }
}

/// Elements whose content a reader does not see (a document's `<title>` is not part of
/// its text).
fn is_hidden(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "iframe" | "noembed" | "noframes" | "title"
    )
}

/// Elements that start a new line (or cell) when shown.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "br"
            | "caption"
            | "dd"
            | "details"
            | "div"
            | "dl"
            | "dt"
            | "figcaption"
            | "figure"
            | "footer"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "td"
            | "th"
            | "tr"
            | "ul"
    )
}
