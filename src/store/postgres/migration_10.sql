-- Version 10: feedback (see ../sqlite/migration_16.sql).
CREATE TABLE learned (
    rule     TEXT NOT NULL,
    feed     TEXT NOT NULL,
    item_key TEXT NOT NULL,
    alert    BIGINT NOT NULL,
    vote     TEXT NOT NULL CHECK (vote IN ('more', 'not')),
    text     TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (rule, feed, item_key)
);
