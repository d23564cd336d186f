-- incident-sync schema, version 1.
-- Timestamps are ISO-8601 UTC text (YYYY-MM-DDTHH:MM:SS.sssZ) so SQLite's
-- date functions work on them; *_ms columns are epoch milliseconds.
-- Incidents and scripts have integer surrogate keys (assigned in arrival
-- order) so child rows append at the end of their B-trees; the API's text ids
-- stay UNIQUE and are what people query by (see the views).

CREATE TABLE scripts (
    script_key                INTEGER PRIMARY KEY,
    key                       TEXT NOT NULL UNIQUE,  -- the API's script.key
    id                        TEXT,
    app_id                    TEXT,
    host_domain               TEXT,
    type                      TEXT,
    vendor                    TEXT,
    first_seen                TEXT,
    last_seen                 TEXT,
    users_affected_percentage REAL,
    ack                       INTEGER,               -- 0/1, NULL when absent
    risk_level                TEXT,
    risk_reason               TEXT,
    content_hash              INTEGER NOT NULL       -- skips rewriting an unchanged script
);

CREATE TABLE script_page_types (
    script_key INTEGER NOT NULL REFERENCES scripts(script_key) ON DELETE CASCADE,
    page_type  TEXT NOT NULL,
    PRIMARY KEY (script_key, page_type)
) WITHOUT ROWID;

CREATE TABLE incidents (
    incident_key       INTEGER PRIMARY KEY,
    id                 TEXT NOT NULL UNIQUE,         -- the API's 24-hex incident id
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
    content_changed_at TEXT NOT NULL                 -- when anything but its last_seen times last changed
);

CREATE TABLE incident_page_types (
    incident_key INTEGER NOT NULL REFERENCES incidents(incident_key) ON DELETE CASCADE,
    page_type    TEXT NOT NULL,
    listed       INTEGER NOT NULL,                   -- 1 when in page_types
    percentage   REAL,                               -- from page_types_per, NULL when absent
    PRIMARY KEY (incident_key, page_type)
) WITHOUT ROWID;

CREATE TABLE actions (
    incident_key INTEGER NOT NULL REFERENCES incidents(incident_key) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,                   -- position in the incident's actions[]
    type         TEXT,
    subtype      TEXT,
    last_seen    TEXT,
    PRIMARY KEY (incident_key, ordinal)
) WITHOUT ROWID;

CREATE TABLE action_args (
    incident_key   INTEGER NOT NULL,
    action_ordinal INTEGER NOT NULL,
    name           TEXT NOT NULL,
    value          TEXT,
    PRIMARY KEY (incident_key, action_ordinal, name),
    FOREIGN KEY (incident_key, action_ordinal) REFERENCES actions(incident_key, ordinal) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE vulnerabilities (
    incident_key INTEGER NOT NULL REFERENCES incidents(incident_key) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    package      TEXT,
    version      TEXT,
    PRIMARY KEY (incident_key, ordinal)
) WITHOUT ROWID;

CREATE TABLE vulnerability_ids (
    incident_key          INTEGER NOT NULL,
    vulnerability_ordinal INTEGER NOT NULL,
    vulnerability_id      TEXT NOT NULL,             -- e.g. CVE-2021-23337
    PRIMARY KEY (incident_key, vulnerability_ordinal, vulnerability_id),
    FOREIGN KEY (incident_key, vulnerability_ordinal)
        REFERENCES vulnerabilities(incident_key, ordinal) ON DELETE CASCADE
) WITHOUT ROWID;

-- One row per (app_id, tld): every incident with last_seen < watermark_ms has
-- been committed (modulo the overlap that each window re-reads).
CREATE TABLE sync_state (
    app_id             TEXT NOT NULL,
    tld                TEXT NOT NULL,
    watermark_ms       INTEGER,                      -- NULL until the first slice commits
    watermark          TEXT,                         -- the same, as ISO-8601 for people
    last_success_at    TEXT,
    last_error_at      TEXT,
    last_error         TEXT,
    auth_failing       INTEGER NOT NULL DEFAULT 0,   -- 1 while the API refuses the token
    PRIMARY KEY (app_id, tld)
);

-- One row per finished (or failed) window slice.
CREATE TABLE sync_runs (
    run_id             INTEGER PRIMARY KEY,
    app_id             TEXT NOT NULL,
    tld                TEXT NOT NULL,
    from_ms            INTEGER NOT NULL,
    to_ms              INTEGER NOT NULL,
    pages              INTEGER NOT NULL,
    incidents_seen     INTEGER NOT NULL,
    incidents_new      INTEGER NOT NULL,
    incidents_changed  INTEGER NOT NULL,
    drift_corrections  INTEGER NOT NULL DEFAULT 0,
    started_at         TEXT NOT NULL,
    finished_at        TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error              TEXT
);

CREATE INDEX incidents_by_pair_last_seen ON incidents(app_id, host_domain, last_seen);
CREATE INDEX incidents_by_last_seen ON incidents(last_seen);
CREATE INDEX incidents_by_risk ON incidents(risk_level, last_seen);
CREATE INDEX incidents_by_script ON incidents(script_key);
CREATE INDEX vulnerability_ids_by_id ON vulnerability_ids(vulnerability_id);
CREATE INDEX sync_runs_by_pair ON sync_runs(app_id, tld, finished_at);

-- Incidents with their text ids and script, for people writing SQL.
CREATE VIEW incidents_with_script AS
SELECT i.id, i.app_id, i.host_domain, i.category, i.incident, i.details, i.initiator,
       i.first_seen, i.last_seen, i.ack_updated_at, i.under_review, i.risk_level,
       s.key AS script_key_text, s.id AS script_id, s.vendor AS script_vendor, s.type AS script_type,
       s.risk_level AS script_risk_level, s.risk_reason AS script_risk_reason,
       i.first_synced_at, i.last_synced_at, i.content_changed_at
FROM incidents i LEFT JOIN scripts s ON s.script_key = i.script_key;

-- Open high-risk incidents (not under review), newest first, with script and vendor.
CREATE VIEW open_high_risk_incidents AS
SELECT i.id, i.app_id, i.host_domain, i.category, i.incident, i.risk_level, i.last_seen,
       s.key AS script, s.vendor AS vendor, s.risk_level AS script_risk_level
FROM incidents i LEFT JOIN scripts s ON s.script_key = i.script_key
WHERE i.risk_level IN ('high', 'critical') AND COALESCE(i.under_review, 0) = 0
ORDER BY i.last_seen DESC;

-- Vulnerable packages with their CVEs and how many incidents carry them.
CREATE VIEW vulnerable_packages AS
SELECT v.package, v.version, vi.vulnerability_id,
       COUNT(DISTINCT v.incident_key) AS incidents,
       MAX(i.last_seen) AS last_seen
FROM vulnerabilities v
JOIN vulnerability_ids vi ON vi.incident_key = v.incident_key AND vi.vulnerability_ordinal = v.ordinal
JOIN incidents i ON i.incident_key = v.incident_key
GROUP BY v.package, v.version, vi.vulnerability_id;

-- Child tables with the text incident id joined back.
CREATE VIEW incident_actions AS
SELECT i.id AS incident_id, a.ordinal, a.type, a.subtype, a.last_seen
FROM actions a JOIN incidents i ON i.incident_key = a.incident_key;

CREATE VIEW incident_action_args AS
SELECT i.id AS incident_id, aa.action_ordinal, aa.name, aa.value
FROM action_args aa JOIN incidents i ON i.incident_key = aa.incident_key;

CREATE VIEW incident_vulnerabilities AS
SELECT i.id AS incident_id, v.ordinal, v.package, v.version, vi.vulnerability_id
FROM vulnerabilities v
JOIN incidents i ON i.incident_key = v.incident_key
LEFT JOIN vulnerability_ids vi ON vi.incident_key = v.incident_key AND vi.vulnerability_ordinal = v.ordinal;
