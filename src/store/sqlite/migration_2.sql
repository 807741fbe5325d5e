-- Version 2: feed health. `failing_since` is the first failure of the current run of
-- failures (NULL while the feed works); `broken_since` is when the feed was declared
-- broken (NULL while it is healthy), so a break and a recovery are announced once.
ALTER TABLE feed_state ADD COLUMN failing_since INTEGER;
ALTER TABLE feed_state ADD COLUMN broken_since INTEGER;
