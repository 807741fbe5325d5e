-- Version 4: alert-grade delivery.
--  * 'sending': a dispatcher claimed the row until `lease_until`; a row whose lease ran
--    out (the process died mid-delivery) goes back to 'pending'.
--  * 'merged': the same story from another feed, folded into the row `merged_into`
--    (cross-feed dedupe); never sent on its own.
--  * `story_link`, `story_title`: what dedupe compares (model::StoryKeys); either one
--    equal within the window makes two alerts one story.
CREATE TABLE outbox_v4 (
    id           INTEGER PRIMARY KEY,
    feed         TEXT NOT NULL,
    item_key     TEXT NOT NULL,
    channel      TEXT NOT NULL,
    alert        TEXT NOT NULL,
    state        TEXT NOT NULL
                 CHECK (state IN ('pending', 'sending', 'sent', 'dead', 'held', 'merged')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    created      INTEGER NOT NULL,
    finished     INTEGER,
    lease_until  INTEGER,
    story_link   TEXT,
    story_title  TEXT,
    merged_into  INTEGER,
    UNIQUE (feed, item_key, channel)
);
INSERT INTO outbox_v4 (id, feed, item_key, channel, alert, state, attempts, next_attempt,
                       last_error, created, finished)
    SELECT id, feed, item_key, channel, alert, state, attempts, next_attempt,
           last_error, created, finished
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v4 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (next_attempt) WHERE state = 'pending';
CREATE INDEX outbox_story_link ON outbox (channel, story_link) WHERE story_link IS NOT NULL;
CREATE INDEX outbox_story_title ON outbox (channel, story_title) WHERE story_title IS NOT NULL;
