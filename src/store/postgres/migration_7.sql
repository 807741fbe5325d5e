-- Version 7: items missed between two polls (see ../sqlite/migration_13.sql).
ALTER TABLE feed_state ADD COLUMN newest_item BIGINT;
ALTER TABLE feed_state ADD COLUMN gaps BIGINT NOT NULL DEFAULT 0;
