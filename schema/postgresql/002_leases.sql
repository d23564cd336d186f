-- incident-sync schema for PostgreSQL, version 2: several daemons, one
-- database. Each pair is polled by the daemon that holds its lease; a lease
-- lasts database.lease_ttl unless renewed (every third of it), and its epoch
-- grows whenever another daemon takes it over. Every write of a pair's data
-- first renews the lease on the condition that owner and epoch are still the
-- writer's, inside the data's transaction: a daemon whose lease ended (it was
-- stopped, cut off or too slow) cannot write a page or move a watermark.

ALTER TABLE sync_state ADD COLUMN lease_owner text;           -- the daemon polling the pair (sync_daemons.owner)
ALTER TABLE sync_state ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE sync_state ADD COLUMN lease_epoch bigint NOT NULL DEFAULT 0;

-- The daemons sharing this database, each one's heartbeat renewed with its
-- leases; those seen within database.lease_ttl share the pairs evenly.
CREATE TABLE sync_daemons (
    owner        text PRIMARY KEY,   -- host:pid:random, new at every start
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);

-- Which daemon wrote each sync run.
ALTER TABLE sync_runs ADD COLUMN daemon text;

-- Who holds which pair, for people.
CREATE VIEW pair_leases AS
SELECT s.app_id, s.tld, s.lease_owner, s.lease_expires_at, s.lease_epoch,
       s.lease_expires_at > now() AS held, d.host, d.pid
FROM sync_state s LEFT JOIN sync_daemons d ON d.owner = s.lease_owner;
