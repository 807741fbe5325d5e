-- Version 2: work shared by several instances.
--  * `poll_claim`: per feed source, the instance polling it now (until `lease_until`)
--    and when it is next due, as the instance that polled it last decided; an instance
--    polls a source only when no lease is live and it is due.
--  * `instance`: each running instance's heartbeat and a hash of its effective config,
--    for `status`.
--  * `outbox.claimed_by`: the instance delivering a `sending` row.
CREATE TABLE poll_claim (
    source      TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    lease_until BIGINT,
    next_due    BIGINT
);
CREATE TABLE instance (
    name        TEXT PRIMARY KEY,
    started     BIGINT NOT NULL,
    heartbeat   BIGINT NOT NULL,
    config_hash TEXT NOT NULL
);
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
--  * `channel_send`: the messages each channel sent and when, for `max_per_minute`
--    kept by all instances together; rows older than a minute are pruned.
CREATE TABLE channel_send (
    channel  TEXT NOT NULL,
    at       BIGINT NOT NULL,
    messages INTEGER NOT NULL
);
CREATE INDEX channel_send_at ON channel_send (channel, at);
