-- Version 6: rewrites of a story (see ../sqlite/migration_12.sql).
ALTER TABLE outbox ADD COLUMN gist BYTEA;
