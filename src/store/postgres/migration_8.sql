-- Version 8: filters (see ../sqlite/migration_14.sql).
ALTER TABLE feed_state ADD COLUMN dropped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE feed_state ADD COLUMN first_success BIGINT;
ALTER TABLE recent_item ADD COLUMN dropped_by TEXT;
