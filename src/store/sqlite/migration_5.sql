-- Version 5: what the running daemon wants `newshound status` to show, such as a
-- config change it refused (the previous config keeps running).
CREATE TABLE daemon_note (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    at    INTEGER NOT NULL
) WITHOUT ROWID;
