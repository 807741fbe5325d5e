-- Version 1 of newshound's state. Times are Unix seconds (UTC).

-- One row per configured feed that has been polled at least once.
CREATE TABLE feed_state (
    feed                 TEXT PRIMARY KEY,
    etag                 TEXT,
    last_modified        TEXT,
    last_attempt         INTEGER,
    last_success         INTEGER,
    last_error_kind      TEXT,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

-- Every item key ever recorded per feed: the memory that makes alerts happen once.
CREATE TABLE seen_item (
    feed       TEXT NOT NULL,
    item_key   TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (feed, item_key)
) WITHOUT ROWID;

-- Alerts waiting for delivery, delivered (kept for replay), or dead letters.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    feed         TEXT NOT NULL,
    item_key     TEXT NOT NULL,
    channel      TEXT NOT NULL,
    alert        TEXT NOT NULL,            -- JSON of model::Alert
    state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    created      INTEGER NOT NULL,
    finished     INTEGER,
    UNIQUE (feed, item_key, channel)
);

CREATE INDEX outbox_due ON outbox (next_attempt) WHERE state = 'pending';
