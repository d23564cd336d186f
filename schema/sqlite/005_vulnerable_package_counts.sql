-- incident-sync schema, version 5: vulnerable_packages reads a summary table.
--
-- The view was a GROUP BY over vulnerability_ids_by_package (schema 004):
-- 0.25 s for the README's top-packages query at 200k incidents, nearly all of
-- it spent per (package, version, CVE) group, and there is about one group per
-- CVE row. vulnerable_package_counts holds one row per group, kept exact by
-- the triggers below, with an index on `incidents`, so ORDER BY incidents
-- DESC LIMIT 20 reads 20 index entries.
--
-- A rowid table, not a WITHOUT ROWID table keyed by the group: package and
-- version may be NULL (a vulnerability the API sent without them), which a
-- WITHOUT ROWID key refuses. The triggers look a group up with IS (which the
-- index serves) and keep one row for it, NULLs included. Nor does the table
-- declare UNIQUE or NOT NULL: a constraint that could fail inside a trigger
-- makes SQLite keep a statement journal for every write to vulnerability_ids
-- (a 100k re-read that rewrote 10% of its incidents wrote 3.3 GB instead of
-- 2.1 GB, to temporary files); the triggers are what keeps the rows unique.
--
-- During a first backfill the daemon drops the triggers, empties the table and
-- points vulnerable_packages back at schema 004's GROUP BY (right, if slower);
-- at the end it fills the table with the INSERT below and restores the
-- triggers and this view (store::vulnerable_package_count_triggers holds
-- copies of these statements; a test keeps them equal).
CREATE TABLE vulnerable_package_counts (
    package          TEXT,
    version          TEXT,
    vulnerability_id TEXT,
    incidents        INTEGER,   -- distinct incidents carrying it, never 0
    last_seen        TEXT       -- the latest incident_last_seen among them
);
CREATE INDEX vulnerable_package_counts_by_package ON vulnerable_package_counts(package, version, vulnerability_id);
CREATE INDEX vulnerable_package_counts_by_incidents ON vulnerable_package_counts(incidents);

INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
FROM vulnerability_ids
GROUP BY package, version, vulnerability_id;

-- A new CVE row: its group gains its incident unless another row of the same
-- incident (another vulnerability with the same package and version) already
-- carries the CVE.
CREATE TRIGGER vulnerable_package_counts_after_insert AFTER INSERT ON vulnerability_ids
BEGIN
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT NEW.package, NEW.version, NEW.vulnerability_id, 0, NULL
    WHERE NOT EXISTS (SELECT 1 FROM vulnerable_package_counts
                      WHERE package IS NEW.package AND version IS NEW.version
                        AND vulnerability_id = NEW.vulnerability_id);
    UPDATE vulnerable_package_counts
    SET incidents = incidents + NOT EXISTS (SELECT 1 FROM vulnerability_ids
                                            WHERE incident_key = NEW.incident_key
                                              AND vulnerability_ordinal <> NEW.vulnerability_ordinal
                                              AND vulnerability_id = NEW.vulnerability_id
                                              AND package IS NEW.package AND version IS NEW.version),
        last_seen = COALESCE(MAX(last_seen, NEW.incident_last_seen), last_seen, NEW.incident_last_seen)
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id;
END;

-- A CVE row gone: its group loses its incident unless another row of the
-- same incident still carries the CVE, and the row goes at 0. last_seen is
-- looked up again (the last entry of the group in
-- vulnerability_ids_by_package) only when the row gone may have held it.
CREATE TRIGGER vulnerable_package_counts_after_delete AFTER DELETE ON vulnerability_ids
BEGIN
    UPDATE vulnerable_package_counts
    SET incidents = incidents - NOT EXISTS (SELECT 1 FROM vulnerability_ids
                                            WHERE incident_key = OLD.incident_key
                                              AND vulnerability_id = OLD.vulnerability_id
                                              AND package IS OLD.package AND version IS OLD.version),
        last_seen = CASE WHEN OLD.incident_last_seen IS NULL OR OLD.incident_last_seen < last_seen THEN last_seen
                         ELSE (SELECT MAX(incident_last_seen) FROM vulnerability_ids
                               WHERE package IS OLD.package AND version IS OLD.version
                                 AND vulnerability_id = OLD.vulnerability_id) END
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id;
    DELETE FROM vulnerable_package_counts
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id
      AND incidents = 0;
END;

-- The daemon never updates CVE rows (it deletes and inserts an incident's
-- children); an UPDATE by hand or by a later migration counts both groups
-- it touches again from vulnerability_ids.
CREATE TRIGGER vulnerable_package_counts_after_update
AFTER UPDATE OF incident_key, vulnerability_id, package, version, incident_last_seen ON vulnerability_ids
BEGIN
    DELETE FROM vulnerable_package_counts
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id;
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
    FROM vulnerability_ids
    WHERE package IS OLD.package AND version IS OLD.version AND vulnerability_id = OLD.vulnerability_id
    GROUP BY package, version, vulnerability_id;
    DELETE FROM vulnerable_package_counts
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id;
    INSERT INTO vulnerable_package_counts (package, version, vulnerability_id, incidents, last_seen)
    SELECT package, version, vulnerability_id, COUNT(DISTINCT incident_key), MAX(incident_last_seen)
    FROM vulnerability_ids
    WHERE package IS NEW.package AND version IS NEW.version AND vulnerability_id = NEW.vulnerability_id
    GROUP BY package, version, vulnerability_id;
END;

-- The same columns and rows as before.
DROP VIEW vulnerable_packages;
CREATE VIEW vulnerable_packages AS
SELECT package, version, vulnerability_id, incidents, last_seen
FROM vulnerable_package_counts;
