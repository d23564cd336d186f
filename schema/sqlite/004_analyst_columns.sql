-- incident-sync schema, version 4: analyst-facing columns. Additive: every
-- existing column keeps its name and position, new columns come after them,
-- so queries written against version 3 return what they returned.

-- The slice window of each sync run as ISO-8601, like every other *_at
-- column. Plain columns written by the daemon (with the formatter that writes
-- the other *_at columns), not generated ones: a database with a generated
-- column cannot be opened at all by SQLite before 3.31, which older analyst
-- tools still bundle. strftime's %f is exact to the millisecond here.
ALTER TABLE sync_runs ADD COLUMN from_at TEXT;
ALTER TABLE sync_runs ADD COLUMN to_at TEXT;
UPDATE sync_runs SET from_at = strftime('%Y-%m-%dT%H:%M:%fZ', from_ms / 1000.0, 'unixepoch'),
                     to_at = strftime('%Y-%m-%dT%H:%M:%fZ', to_ms / 1000.0, 'unixepoch');

-- Each CVE row carries copies of its vulnerability's package and version and
-- of its incident's last_seen, so that vulnerable_packages is one ordered
-- pass over one index (vulnerability_ids_by_package) instead of a three-table
-- join sorted in a temporary B-tree (the README's top-packages query at 200k
-- incidents: about 2 s before, 0.25 s with this). The copies cannot go stale: the
-- daemon rewrites an incident's child rows whenever any byte of the incident
-- changes, last_seen included. The daemon defers this index during a first
-- backfill (store::deferred_indexes), like vulnerability_ids_by_id.
ALTER TABLE vulnerability_ids ADD COLUMN package TEXT;
ALTER TABLE vulnerability_ids ADD COLUMN version TEXT;
ALTER TABLE vulnerability_ids ADD COLUMN incident_last_seen TEXT;
UPDATE vulnerability_ids SET
    (package, version) = (SELECT v.package, v.version FROM vulnerabilities v
                          WHERE v.incident_key = vulnerability_ids.incident_key
                            AND v.ordinal = vulnerability_ids.vulnerability_ordinal),
    incident_last_seen = (SELECT i.last_seen FROM incidents i WHERE i.incident_key = vulnerability_ids.incident_key);
CREATE INDEX vulnerability_ids_by_package ON vulnerability_ids(package, version, vulnerability_id, incident_last_seen);

-- Views: dropped and made again with the new columns at the end.

-- Open high-risk incidents, now with the script's id (its URL) too.
DROP VIEW open_high_risk_incidents;
CREATE VIEW open_high_risk_incidents AS
SELECT i.id, i.app_id, i.host_domain, i.category, i.incident, i.risk_level, i.last_seen,
       s.key AS script, s.vendor AS vendor, s.risk_level AS script_risk_level,
       s.id AS script_id
FROM incidents i LEFT JOIN scripts s ON s.script_key = i.script_key
WHERE i.risk_level IN ('high', 'critical') AND COALESCE(i.under_review, 0) = 0
ORDER BY i.last_seen DESC;

-- The history, now with the incident's app, host and title.
DROP VIEW incident_history;
CREATE VIEW incident_history AS
SELECT i.id AS incident_id, c.observed_at, c.field, c.old_value, c.new_value,
       i.app_id, i.host_domain, i.incident
FROM incident_changes c JOIN incidents i ON i.incident_key = c.incident_key;

-- Vulnerable packages with their CVEs and how many incidents carry them:
-- the same columns and rows as before, read from vulnerability_ids alone.
DROP VIEW vulnerable_packages;
CREATE VIEW vulnerable_packages AS
SELECT package, version, vulnerability_id,
       COUNT(DISTINCT incident_key) AS incidents,
       MAX(incident_last_seen) AS last_seen
FROM vulnerability_ids
GROUP BY package, version, vulnerability_id;
