-- incident-sync schema, version 3: incidents.content_hash is XXH3-64 of
-- raw_json (it was FNV-1a, whose byte-at-a-time loop was 12% of a re-read's
-- CPU). Recomputed here so that an upgrade does not take every stored
-- incident for a changed one. isync_content_hash() is registered by the
-- daemon on its own connection for this migration.
UPDATE incidents SET content_hash = isync_content_hash(raw_json);
