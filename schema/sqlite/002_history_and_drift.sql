-- incident-sync schema, version 2: change history and schema drift.

-- The script risk as of the incident's last write: a script is shared, so
-- its own row cannot say what each incident saw before.
ALTER TABLE incidents ADD COLUMN script_risk_level TEXT;
UPDATE incidents SET script_risk_level = (SELECT risk_level FROM scripts s WHERE s.script_key = incidents.script_key);

-- One row per changed field whenever an upsert changes an incident's
-- risk_level, under_review, category, ack_updated_at, its script's risk, or
-- its set of actions or vulnerabilities. A sync of unchanged data adds nothing.
CREATE TABLE incident_changes (
    change_id    INTEGER PRIMARY KEY,
    incident_key INTEGER NOT NULL REFERENCES incidents(incident_key) ON DELETE CASCADE,
    observed_at  TEXT NOT NULL,     -- when the sync saw the change
    field        TEXT NOT NULL,     -- risk_level, under_review, category, ack_updated_at, script_risk, actions, vulnerabilities
    old_value    TEXT,
    new_value    TEXT
);
CREATE INDEX incident_changes_by_incident ON incident_changes(incident_key, observed_at);
CREATE INDEX incident_changes_by_time ON incident_changes(observed_at, field);

-- The history with the text incident id: "when did this become high risk?"
CREATE VIEW incident_history AS
SELECT i.id AS incident_id, c.observed_at, c.field, c.old_value, c.new_value
FROM incident_changes c JOIN incidents i ON i.incident_key = c.incident_key;

-- Risk escalations observed in the last day (informative < low < medium < high < critical).
CREATE VIEW recent_escalations AS
WITH ranked AS (
    SELECT c.*,
           CASE c.old_value WHEN 'informative' THEN 0 WHEN 'low' THEN 1 WHEN 'medium' THEN 2
                            WHEN 'high' THEN 3 WHEN 'critical' THEN 4 ELSE -1 END AS old_rank,
           CASE c.new_value WHEN 'informative' THEN 0 WHEN 'low' THEN 1 WHEN 'medium' THEN 2
                            WHEN 'high' THEN 3 WHEN 'critical' THEN 4 ELSE -1 END AS new_rank
    FROM incident_changes c
    WHERE c.field IN ('risk_level', 'script_risk')
      AND c.observed_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
)
SELECT i.id AS incident_id, i.app_id, i.host_domain, i.incident, r.field, r.old_value, r.new_value, r.observed_at
FROM ranked r JOIN incidents i ON i.incident_key = r.incident_key
WHERE r.new_rank > r.old_rank
ORDER BY r.observed_at DESC;

-- Fields the API sent that the schema does not map (the data is safe in
-- incidents.raw_json): one row per JSON path, the first time it is seen.
CREATE TABLE unknown_fields (
    json_path           TEXT PRIMARY KEY,   -- e.g. $.script.new_flag, $.actions[].weight
    first_seen_at       TEXT NOT NULL,
    example_incident_id TEXT NOT NULL
);
