-- Version 6: the items of the last 24 hours (plain text, as matched), so a rule added
-- while the daemon runs can be tried on them (daemon.backfill_new_rules, and
-- `newshound test-rules --since`). Older rows are pruned as polls come in.
CREATE TABLE recent_item (
    feed     TEXT NOT NULL,
    item_key TEXT NOT NULL,
    seen     INTEGER NOT NULL,
    item     TEXT NOT NULL,            -- JSON of model::Item
    PRIMARY KEY (feed, item_key)
) WITHOUT ROWID;
CREATE INDEX recent_item_seen ON recent_item (seen);
