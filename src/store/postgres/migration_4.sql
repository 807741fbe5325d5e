-- Version 4: bounded state (see ../sqlite/migration_10.sql).
ALTER TABLE seen_item ADD COLUMN gone_since BIGINT;
CREATE INDEX seen_item_gone ON seen_item (gone_since) WHERE gone_since IS NOT NULL;
CREATE INDEX outbox_finished ON outbox (state, finished);
