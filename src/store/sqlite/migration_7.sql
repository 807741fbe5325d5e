-- Version 7: what a feed asked for, kept across restarts and for `status`.
--  * `flooding_since`: when the feed's polls started to look like a flood (re-keyed or
--    flooded items); NULL once a poll with new items is not. One notice per flood.
--  * `retry_after_until`: the end of the wait the server asked for (Retry-After on a
--    429 or 503); NULL after a success.
ALTER TABLE feed_state ADD COLUMN flooding_since INTEGER;
ALTER TABLE feed_state ADD COLUMN retry_after_until INTEGER;
