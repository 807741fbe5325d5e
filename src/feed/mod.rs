//! Feeds: fetching bytes over HTTP or from disk ([`fetch`]) and parsing them into
//! items with our own keys and plain text ([`parse()`]).

pub mod fetch;
pub mod parse;

pub use fetch::{FetchError, Fetched, Fetcher};
pub use parse::{ParseError, ParsedFeed, parse};
