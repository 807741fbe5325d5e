-- Version 12: rewrites of a story (the same story in other words), when
-- `daemon.merge_rewrites` is on.
--  * `outbox.gist`: what the item's text says (model::Gist: its embedding, the names
--    and numbers it gives, its date), for telling a later rewrite from another story.
--  * Its names go into `story_band` beside the sketch's bands: a later item is
--    compared only with alerts that share two names with it.
ALTER TABLE outbox ADD COLUMN gist BLOB;
