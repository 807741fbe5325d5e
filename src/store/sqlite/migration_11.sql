-- Version 11: copies of a story (the same text under another headline and link).
--  * `outbox.sketch`: the MinHash sketch of the item's text (model::Sketch), for
--    telling a later copy from another story.
--  * `story_band`: each sketch's band keys, per channel, for alerts queued within the
--    dedupe window: a later item is compared only with alerts that share a band.
--    Rows older than the window are deleted as new alerts come.
ALTER TABLE outbox ADD COLUMN sketch BLOB;
CREATE TABLE story_band (
    channel TEXT NOT NULL,
    band    INTEGER NOT NULL,
    alert   INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX story_band_key ON story_band (channel, band);
CREATE INDEX story_band_created ON story_band (created);
