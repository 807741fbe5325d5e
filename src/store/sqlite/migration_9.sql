-- Version 9: the articles of a feed's items (`fetch_article`) that could not be read:
-- how many in all, and why the last could not be (with its link). Shown by `status`.
ALTER TABLE feed_state ADD COLUMN articles_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE feed_state ADD COLUMN article_error TEXT;
