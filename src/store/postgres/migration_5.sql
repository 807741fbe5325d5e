-- Version 5: copies of a story (see ../sqlite/migration_11.sql).
ALTER TABLE outbox ADD COLUMN sketch BYTEA;
CREATE TABLE story_band (
    channel TEXT NOT NULL,
    band    BIGINT NOT NULL,
    alert   BIGINT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX story_band_key ON story_band (channel, band);
CREATE INDEX story_band_created ON story_band (created);
