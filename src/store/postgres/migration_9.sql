-- Version 9: what each rule catches (see ../sqlite/migration_15.sql).
CREATE TABLE rule_day (
    rule       TEXT NOT NULL,
    day        BIGINT NOT NULL,
    caught     BIGINT NOT NULL,
    last_title TEXT NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (rule, day)
);
CREATE INDEX rule_day_day ON rule_day (day);
