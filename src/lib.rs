//! newshound watches RSS, Atom and JSON feeds for keywords and topics, and alerts people
//! by email, webhook, chat and push services, a command, a Maildir or an Atom feed.
//!
//! The pipeline and the module that owns each step:
//!
//! ```text
//! schedule ─► fetch ─► parse ─► identify ─► store (new?) ─► match ─► outbox ─► deliver
//! daemon      feed     feed     model       store           rules    store     notify
//! ```
//!
//! - [`model`]: plain data (items, keys, alerts).
//! - [`rules`]: folding, the compiled matcher, topic clauses scored on vectors; pure.
//! - [`semantic`]: the embedding models topic rules use (the builtin table, model2vec
//!   and BERT directories), on the CPU with no network.
//! - [`config`]: the TOML file and environment overrides, checked into a [`config::Config`];
//!   what changed between two configs (reloads), OPML import/export.
//! - [`feed`]: fetching over HTTP or from disk, and parsing into [`model::Item`]s.
//! - [`http`]: what the fetcher and the webhooks share: the User-Agent, errors in one
//!   line, `Retry-After`.
//! - [`store`]: the state (feed state, seen items, the outbox) behind one async,
//!   engine-neutral interface; the embedded SQLite engine (a group-committing writer
//!   thread, readers on blocking threads) and the PostgreSQL engine for several
//!   instances sharing one database. All SQL lives there.
//! - [`render`]: what a message says: the templates (minijinja; defaults and a
//!   channel's own, checked when the config loads) and the view of alerts they see.
//! - [`notify`]: the kinds of channel, one module each (its table in the config, its
//!   check, its message, its sending): email, Maildir, webhooks and their presets, the
//!   chat and push services, a command, an Atom feed.
//! - [`daemon`]: polling, matching, dispatching (digests, rate limits), the service
//!   (reloads, liveness, `/metrics` and `/healthz`); the only place that spawns tasks.
//!   Parsing and matching run on blocking threads, never on the async workers.
//! - [`cli`]: the subcommands, wiring the parts together; signals, the config file
//!   watch and systemd notifications.
//!
//! Dependencies point one way, and `tests/layers.rs` checks it:
//!
//! ```text
//! cli → daemon → feed / store → config → notify → render / rules / semantic → model
//!                feed, notify → http (a leaf)
//! ```
//!
//! Plain data that two of the middle layers share lives in `model`.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod feed;
pub mod http;
pub mod model;
pub mod notify;
pub mod render;
pub mod rules;
pub mod semantic;
pub mod store;
