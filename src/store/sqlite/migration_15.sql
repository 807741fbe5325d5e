-- Version 15: what each rule catches, day by day, for the status page's charts.
--  * `rule_day`: per rule and UTC day (Unix seconds of its midnight), how many items
--    the rule caught, and the last one's title and time. Days older than 30 are
--    pruned.
CREATE TABLE rule_day (
    rule       TEXT NOT NULL,
    day        INTEGER NOT NULL,
    caught     INTEGER NOT NULL,
    last_title TEXT NOT NULL,
    last_at    INTEGER NOT NULL,
    PRIMARY KEY (rule, day)
) WITHOUT ROWID;
CREATE INDEX rule_day_day ON rule_day (day);
