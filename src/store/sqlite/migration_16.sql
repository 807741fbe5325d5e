-- Version 16: feedback from alerts' links.
--  * `learned`: a rule's examples learned from "more like this" (`more`) and "not
--    this" (`not`) clicks on its alerts: the item's text, one per rule and alert (the
--    last vote counts). The HMAC key that signs the links is the note
--    `feedback_key`.
CREATE TABLE learned (
    rule  TEXT NOT NULL,
    alert INTEGER NOT NULL,
    vote  TEXT NOT NULL CHECK (vote IN ('more', 'not')),
    text  TEXT NOT NULL,
    at    INTEGER NOT NULL,
    PRIMARY KEY (rule, alert)
);
