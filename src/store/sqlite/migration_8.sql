-- Version 8: `repaired`, what was wrong with the last document a feed served (a bare
-- `&`, a stray end tag, …) when it was read only once made well-formed; NULL when it
-- was well-formed. Shown by `status`.
ALTER TABLE feed_state ADD COLUMN repaired TEXT;
