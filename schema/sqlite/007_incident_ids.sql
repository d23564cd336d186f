-- incident-sync schema, version 7: the daemon finds incidents by id in
-- incident_ids, and incidents.id loses its UNIQUE constraint.
-- rewrites: rebuilds the incidents table, once (it needs free disk space the size of that table; 1,000,000 incidents took 34 s on a 2-core machine)
--
-- Why: ids are random, so the UNIQUE index on incidents.id took each new
-- incident at a random leaf. Past a few hundred thousand incidents those
-- leaves no longer fit SQLite's 4 MiB cache, and every insert wrote one 16 KiB
-- page to the log: 18 GB for a 1M backfill. The writer now adds a
-- transaction's new ids to incident_ids in one pass, in id order, just
-- before it commits (at most 8,192 at a time), so each leaf is written at
-- most once per pass.
--
-- incidents_by_id keeps readers' `WHERE id = ...` fast. Like the
-- vulnerability_ids indexes, a first backfill builds it at its end.

CREATE TABLE incident_ids (
    id           TEXT PRIMARY KEY,   -- the API's incident id, unique
    incident_key INTEGER NOT NULL    -- incidents.incident_key
) WITHOUT ROWID;

INSERT INTO incident_ids (id, incident_key) SELECT id, incident_key FROM incidents ORDER BY id;

-- SQLite cannot drop a UNIQUE constraint: the table is rebuilt (SQLite's own
-- procedure, https://sqlite.org/lang_altertable.html#otheralter). The
-- migration runs with foreign keys off, so dropping the old table deletes no
-- child row; incident_key is copied as it was, so every reference holds.
-- legacy_alter_table lets the rename go through while the views name a table
-- that is, for that moment, missing.
PRAGMA legacy_alter_table=ON;

CREATE TABLE incidents_rebuilt (
    incident_key       INTEGER PRIMARY KEY,
    id                 TEXT NOT NULL,                -- the API's incident id; unique (see incident_ids)
    app_id             TEXT,
    host_domain        TEXT,
    category           TEXT,
    incident           TEXT,                         -- the title
    details            TEXT,
    initiator          TEXT,
    first_seen         TEXT,
    last_seen          TEXT,
    ack_updated_at     TEXT,
    under_review       INTEGER,                      -- 0/1, NULL when absent
    risk_level         TEXT,
    script_key         INTEGER REFERENCES scripts(script_key),
    raw_json           TEXT NOT NULL,                -- the incident exactly as received
    content_hash       INTEGER NOT NULL,             -- of raw_json; equal hash = nothing to write
    substance_hash     INTEGER NOT NULL,             -- of the content except last_seen timestamps
    first_synced_at    TEXT NOT NULL,                -- when this daemon first stored it
    last_synced_at     TEXT NOT NULL,                -- when a sync last received a new version of it
    content_changed_at TEXT NOT NULL,                -- when anything but its last_seen times last changed
    script_risk_level  TEXT                          -- the script's risk level, copied (schema 002)
);

INSERT INTO incidents_rebuilt (incident_key, id, app_id, host_domain, category, incident, details, initiator,
                               first_seen, last_seen, ack_updated_at, under_review, risk_level, script_key,
                               raw_json, content_hash, substance_hash, first_synced_at, last_synced_at,
                               content_changed_at, script_risk_level)
SELECT incident_key, id, app_id, host_domain, category, incident, details, initiator,
       first_seen, last_seen, ack_updated_at, under_review, risk_level, script_key,
       raw_json, content_hash, substance_hash, first_synced_at, last_synced_at,
       content_changed_at, script_risk_level
FROM incidents;

DROP TABLE incidents;
ALTER TABLE incidents_rebuilt RENAME TO incidents;
PRAGMA legacy_alter_table=OFF;

CREATE INDEX incidents_by_pair_last_seen ON incidents(app_id, host_domain, last_seen);
CREATE INDEX incidents_by_last_seen ON incidents(last_seen);
CREATE INDEX incidents_by_risk ON incidents(risk_level, last_seen);
CREATE INDEX incidents_by_script ON incidents(script_key);
CREATE INDEX incidents_by_id ON incidents(id);
