-- Version 1 of newshound's state on PostgreSQL: the same tables as the embedded
-- engine's (see ../sqlite/*.sql for what each column means). Times are Unix seconds
-- (UTC), as there, so that a state moves between the engines unchanged.

CREATE TABLE feed_state (
    feed                 TEXT PRIMARY KEY,
    etag                 TEXT,
    last_modified        TEXT,
    last_attempt         BIGINT,
    last_success         BIGINT,
    last_error_kind      TEXT,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since        BIGINT,
    broken_since         BIGINT,
    flooding_since       BIGINT,
    retry_after_until    BIGINT,
    repaired             TEXT
);

CREATE TABLE seen_item (
    feed       TEXT NOT NULL,
    item_key   TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (feed, item_key)
);

CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    feed         TEXT NOT NULL,
    item_key     TEXT NOT NULL,
    channel      TEXT NOT NULL,
    alert        TEXT NOT NULL,
    state        TEXT NOT NULL
                 CHECK (state IN ('pending', 'sending', 'sent', 'dead', 'held', 'merged')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL,
    last_error   TEXT,
    created      BIGINT NOT NULL,
    finished     BIGINT,
    lease_until  BIGINT,
    story_link   TEXT,
    story_title  TEXT,
    merged_into  BIGINT,
    UNIQUE (feed, item_key, channel)
);
CREATE INDEX outbox_due ON outbox (next_attempt) WHERE state = 'pending';
CREATE INDEX outbox_story_link ON outbox (channel, story_link) WHERE story_link IS NOT NULL;
CREATE INDEX outbox_story_title ON outbox (channel, story_title) WHERE story_title IS NOT NULL;
CREATE INDEX outbox_feed_state ON outbox (feed, state);

CREATE TABLE daemon_note (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    at    BIGINT NOT NULL
);

CREATE TABLE recent_item (
    feed     TEXT NOT NULL,
    item_key TEXT NOT NULL,
    seen     BIGINT NOT NULL,
    item     TEXT NOT NULL,
    PRIMARY KEY (feed, item_key)
);
CREATE INDEX recent_item_seen ON recent_item (seen);
