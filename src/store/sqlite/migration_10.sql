-- Version 10: bounded state.
--  * `seen_item.gone_since`: when the item was first missing from its feed's document
--    (NULL while the feed still serves it). Only a change writes it: an item leaving,
--    or coming back. An item gone for `daemon.forget_after` is forgotten.
--  * Indexes for what the pruner looks for: items gone, alerts finished.
ALTER TABLE seen_item ADD COLUMN gone_since INTEGER;
CREATE INDEX seen_item_gone ON seen_item (gone_since) WHERE gone_since IS NOT NULL;
CREATE INDEX outbox_finished ON outbox (state, finished);
