-- Version 3: alerts can be 'held' (a flood of new items from one feed, kept for
-- `newshound replay --held` instead of sent). SQLite cannot change a CHECK in place,
-- so the outbox is rebuilt with its rows.
CREATE TABLE outbox_v3 (
    id           INTEGER PRIMARY KEY,
    feed         TEXT NOT NULL,
    item_key     TEXT NOT NULL,
    channel      TEXT NOT NULL,
    alert        TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead', 'held')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    created      INTEGER NOT NULL,
    finished     INTEGER,
    UNIQUE (feed, item_key, channel)
);
INSERT INTO outbox_v3 SELECT * FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (next_attempt) WHERE state = 'pending';
