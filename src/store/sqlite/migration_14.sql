-- Version 14: filters, which drop items before any rule sees them.
--  * `feed_state.dropped`: how many of the feed's items a filter dropped.
--  * `recent_item.dropped_by`: the filter that dropped the item (`NULL`: it went on to
--    the rules), for `newshound why`.
--  * `feed_state.first_success`: when the feed was first polled with success (its
--    first poll, which `first_poll` governs), for `newshound why`; unknown (`NULL`)
--    for feeds polled before this version.
ALTER TABLE feed_state ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feed_state ADD COLUMN first_success INTEGER;
ALTER TABLE recent_item ADD COLUMN dropped_by TEXT;
