-- incident-sync schema, version 6: what kind of pass wrote each sync run.
-- 'poll' for the daemon's own polls (run, once), 'resync' for a re-read on
-- request (`incident-syncd resync`), which moves no watermark. Runs written
-- before this version were polls: resync came with version 5's daemon, and
-- its runs cannot be told apart after the fact, so they read 'poll' too.
ALTER TABLE sync_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'poll' CHECK (kind IN ('poll', 'resync'));
