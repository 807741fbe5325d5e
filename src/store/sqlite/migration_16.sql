-- Version 16: feedback from alerts' links.
--  * `learned`: a rule's examples learned from "more like this" (`more`) and "not
--    this" (`not`) clicks on its alerts: the item's text, one per rule and item (the
--    last vote counts, whichever of the item's alerts carried it; an outbox id may be
--    used again once its alert is pruned, so it is no key). The HMAC key that signs
--    the links is the note `feedback_key`.
CREATE TABLE learned (
    rule     TEXT NOT NULL,
    feed     TEXT NOT NULL,
    item_key TEXT NOT NULL,
    alert    INTEGER NOT NULL,
    vote     TEXT NOT NULL CHECK (vote IN ('more', 'not')),
    text     TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (rule, feed, item_key)
);
