-- Version 13: items missed between two polls.
--  * `feed_state.newest_item`: the newest publication date among the items of the
--    feed's last document (Unix seconds), to tell whether the next document starts
--    after it: then the feed published more than it keeps in between.
--  * `feed_state.gaps`: how many polls found such a gap.
ALTER TABLE feed_state ADD COLUMN newest_item INTEGER;
ALTER TABLE feed_state ADD COLUMN gaps INTEGER NOT NULL DEFAULT 0;
