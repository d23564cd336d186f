#include "pgstore/pg_incident_writer.hpp"

#include "pgstore/pg_array.hpp"
#include "store/change_history.hpp"
#include "store/hashing.hpp"
#include "util/hash.hpp"
#include "util/timestamp.hpp"

#include <algorithm>
#include <initializer_list>
#include <iterator>

namespace isync::pgstore {
namespace {

// A timestamp column's value: the API's text parsed and re-formatted in UTC;
// NULL when it is not a timestamp (raw_json keeps what was sent).
std::optional<std::string> timestamp(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    return util::normalize_iso8601(*text);
}

std::optional<std::string> flag(const std::optional<bool>& b) {
    if (!b) return std::nullopt;
    return *b ? "1" : "0";
}

std::optional<std::string> bool_text(const std::optional<bool>& b) {
    if (!b) return std::nullopt;
    return *b ? "true" : "false";
}

// The columns of arrays of one statement, bound as $1..$n. `text_columns`
// are the indexes of its `$n::text[]` columns: sent as binary text arrays,
// which the server copies instead of parsing (pg_array::format).
struct columns {
    std::vector<pg_array> arrays;
    explicit columns(std::size_t n, std::initializer_list<std::size_t> text_columns = {}) : arrays(n) {
        for (auto i : text_columns) arrays.at(i) = pg_array(pg_array::format::binary_text);
    }
    params bind() const {
        params p;
        for (const auto& a : arrays) p.emplace_back(a.value());
        return p;
    }
    std::vector<int> formats() const {
        std::vector<int> f;
        for (const auto& a : arrays) f.push_back(a.binary() ? 1 : 0);
        return f;
    }
    bool empty() const { return arrays.front().empty(); }
};

pg_array ids_of(const std::vector<std::int64_t>& keys) {
    pg_array a;
    for (auto k : keys) a.add(k);
    return a;
}

}  // namespace

std::optional<std::int64_t> pg_incident_writer::stored_content_hash(const std::string& id) {
    auto r = conn_.exec("SELECT content_hash FROM incidents WHERE id = $1", {id});
    if (r.rows() == 0) return std::nullopt;
    return r.int64(0, 0);
}

std::vector<std::optional<std::int64_t>> pg_incident_writer::stored_content_hashes(
    std::span<const model::raw_incident> page) {
    pg_array ids;
    for (const auto& raw : page) ids.add(std::string_view(raw.id));
    // The whole lookup that write() needs, kept: the page's new and changed
    // incidents are written next, and need no second round trip.
    looked_up_ = look_up(ids);
    std::vector<std::optional<std::int64_t>> out;
    out.reserve(page.size());
    for (const auto& raw : page) {
        const auto f = looked_up_.stored.find(raw.id);
        out.push_back(f == looked_up_.stored.end() ? std::nullopt
                                                   : std::optional<std::int64_t>(f->second.content_hash));
    }
    return out;
}

pg_incident_writer::lookup pg_incident_writer::look_up(const pg_array& ids) {
    // A new incident gets its incident_key here, from the column's own
    // sequence (nextval runs only for the ids not stored), so that its child
    // rows can go in the same round trip as the incident.
    // ack_updated_at in util::format_iso8601_ms's form, as history compares it.
    auto r = conn_.exec(
        "SELECT u.id, i.incident_key, i.content_hash, i.risk_level, i.under_review, i.category, "
        "to_char(i.ack_updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), i.script_risk_level, "
        "CASE WHEN i.incident_key IS NULL THEN nextval('incidents_incident_key_seq') END "
        "FROM unnest($1::text[]) AS u(id) LEFT JOIN incidents i ON i.id = u.id",
        {ids.value()});
    lookup found;
    for (int i = 0; i < r.rows(); ++i) {
        std::string id(r.text(i, 0));
        if (r.is_null(i, 1)) {
            found.new_keys.emplace(std::move(id), r.int64(i, 8));
            continue;
        }
        stored_incident s;
        s.incident_key = r.int64(i, 1);
        s.content_hash = r.int64(i, 2);
        s.risk_level = r.optional_text(i, 3);
        if (!r.is_null(i, 4)) s.under_review = r.int64(i, 4) ? "true" : "false";
        s.category = r.optional_text(i, 5);
        s.ack_updated_at = r.optional_text(i, 6);
        s.script_risk = r.optional_text(i, 7);
        found.stored.emplace(std::move(id), std::move(s));
    }
    return found;
}

pg_incident_writer::lookup pg_incident_writer::find_incidents(std::span<const model::incident* const> batch) {
    // What stored_content_hashes() looked up for this page is used once
    // (a later batch of the page that repeats an id must see the first
    // batch's write); only the ids it did not cover are asked for.
    lookup found;
    pg_array missing;
    for (const auto* inc : batch) {
        if (auto s = looked_up_.stored.extract(inc->id))
            found.stored.insert(std::move(s));
        else if (auto k = looked_up_.new_keys.extract(inc->id))
            found.new_keys.insert(std::move(k));
        else
            missing.add(std::string_view(inc->id));
    }
    if (missing.empty()) return found;
    auto asked = look_up(missing);
    found.stored.merge(asked.stored);
    found.new_keys.merge(asked.new_keys);
    return found;
}

store::upsert_counts pg_incident_writer::write(std::span<const model::incident* const> batch,
                                               const std::string& now_text) {
    store::upsert_counts counts;
    counts.seen = static_cast<std::int64_t>(batch.size());
    const auto [stored, new_keys] = find_incidents(batch);

    std::vector<const model::incident*> to_write, changed;
    for (const auto* inc : batch) {
        const std::int64_t content = inc->hashes ? inc->hashes->content : util::hash_bytes(inc->raw_json);
        const auto s = stored.find(inc->id);
        if (s != stored.end() && s->second.content_hash == content) {
            ++counts.unchanged;  // byte-identical to what we hold: write nothing
            continue;
        }
        to_write.push_back(inc);
        if (s != stored.end()) changed.push_back(inc);
    }
    counts.changed = static_cast<std::int64_t>(changed.size());
    counts.inserted = static_cast<std::int64_t>(to_write.size() - changed.size());
    if (to_write.empty()) return counts;

    std::vector<model::incident_hashes> hashes;
    hashes.reserve(to_write.size());
    for (const auto* inc : to_write) hashes.push_back(inc->hashes ? *inc->hashes : store::hashes_of(*inc));
    upsert_scripts(to_write, hashes);
    if (!changed.empty()) record_changes(changed, stored, now_text);

    columns c(18, {1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 17});
    auto& a = c.arrays;
    std::unordered_map<std::string_view, std::int64_t> keys;
    for (std::size_t i = 0; i < to_write.size(); ++i) {
        const auto& inc = *to_write[i];
        const auto s = stored.find(inc.id);
        const std::int64_t key = s != stored.end() ? s->second.incident_key : new_keys.at(inc.id);
        keys.emplace(inc.id, key);
        a[0].add(key);
        a[1].add(std::string_view(inc.id));
        a[2].add(inc.app_id);
        a[3].add(inc.host_domain);
        a[4].add(inc.category);
        a[5].add(inc.title);
        a[6].add(inc.details);
        a[7].add(inc.initiator);
        a[8].add(timestamp(inc.first_seen));
        a[9].add(timestamp(inc.last_seen));
        a[10].add(timestamp(inc.ack_updated_at));
        a[11].add(flag(inc.under_review));
        a[12].add(inc.risk_level);
        a[13].add(inc.script ? store::script_share_key(*inc.script) : std::nullopt);
        a[14].add(std::string_view(inc.raw_json));
        a[15].add(inc.hashes ? inc.hashes->content : hashes[i].content);
        a[16].add(hashes[i].substance);
        a[17].add(inc.script ? inc.script->risk_level : std::nullopt);
    }
    params p = c.bind();
    p.emplace_back(now_text);
    // The script's key by its share key: the scripts were upserted just
    // before, in the same round trip.
    conn_.defer(
        {"INSERT INTO incidents (incident_key, id, app_id, host_domain, category, incident, details, "
         "initiator, first_seen, last_seen, ack_updated_at, under_review, risk_level, script_key, raw_json, "
         "content_hash, substance_hash, script_risk_level, first_synced_at, last_synced_at, "
         "content_changed_at) "
         "SELECT u.k, u.id, u.app_id, u.host_domain, u.category, u.incident, u.details, u.initiator, "
         "u.first_seen, u.last_seen, u.ack_updated_at, u.under_review, u.risk_level, "
         "(SELECT s.script_key FROM scripts s WHERE s.key = u.share_key), u.raw_json, u.content_hash, "
         "u.substance_hash, u.script_risk_level, $19::timestamptz, $19::timestamptz, $19::timestamptz "
         "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
         "$8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::smallint[], "
         "$13::text[], $14::text[], $15::text[], $16::bigint[], $17::bigint[], $18::text[]) "
         "AS u(k, id, app_id, host_domain, category, incident, details, initiator, first_seen, last_seen, "
         "ack_updated_at, under_review, risk_level, share_key, raw_json, content_hash, substance_hash, "
         "script_risk_level) "
         "ON CONFLICT (id) DO UPDATE SET app_id = EXCLUDED.app_id, host_domain = EXCLUDED.host_domain, "
         "category = EXCLUDED.category, incident = EXCLUDED.incident, details = EXCLUDED.details, "
         "initiator = EXCLUDED.initiator, first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, "
         "ack_updated_at = EXCLUDED.ack_updated_at, under_review = EXCLUDED.under_review, "
         "risk_level = EXCLUDED.risk_level, script_key = EXCLUDED.script_key, raw_json = EXCLUDED.raw_json, "
         "content_hash = EXCLUDED.content_hash, substance_hash = EXCLUDED.substance_hash, "
         "script_risk_level = EXCLUDED.script_risk_level, last_synced_at = EXCLUDED.last_synced_at, "
         "content_changed_at = CASE WHEN incidents.substance_hash = EXCLUDED.substance_hash "
         "THEN incidents.content_changed_at ELSE EXCLUDED.last_synced_at END",
         std::move(p),
         {},
         c.formats()});

    // The old child rows go and the new ones come, deferred: they are sent
    // with the transaction's next statement or its COMMIT.
    if (!changed.empty()) {
        std::vector<std::int64_t> changed_keys;
        for (const auto* inc : changed) changed_keys.push_back(stored.at(inc->id).incident_key);
        delete_children(changed_keys);
    }
    insert_children(to_write, keys);
    return counts;
}

void pg_incident_writer::upsert_scripts(std::span<const model::incident* const> incidents,
                                        std::span<const model::incident_hashes> hashes) {
    // The last version of each script in the batch, as SQLite's writer, which
    // writes them in order, ends with.
    struct wanted {
        const model::script* script;
        std::int64_t hash;
    };
    // Bounds memory on huge accounts (~0.5 MiB); never mid-batch, which reads
    // every script's key back from the cache.
    if (script_cache_.size() > 4096) script_cache_.clear();
    std::unordered_map<std::string, wanted> scripts;
    for (std::size_t i = 0; i < incidents.size(); ++i) {
        if (!incidents[i]->script) continue;
        if (auto key = store::script_share_key(*incidents[i]->script))
            scripts[*key] = wanted{&*incidents[i]->script, hashes[i].script};
    }
    std::vector<std::string> unknown;
    for (const auto& [key, w] : scripts) {
        const auto cached = script_cache_.find(key);
        if (cached == script_cache_.end() || cached->second != w.hash) unknown.push_back(key);
    }
    if (unknown.empty()) return;
    // In key order: scripts are shared across pairs, so two daemons may write
    // the same ones; in opposite orders each would wait for the other's row.
    std::sort(unknown.begin(), unknown.end());

    // Three statements, deferred: the page types of a stored script whose
    // hash differs go; the script is written where its hash differs (or it
    // is new); then its page types come (a script that did not change keeps
    // its rows, and ON CONFLICT leaves them alone).
    columns c(13, {0, 1, 2, 3, 4, 5, 10, 11}), hashes_of_unknown(2, {0}), page_types(2, {0, 1});
    auto& a = c.arrays;
    for (const auto& key : unknown) {
        const auto& w = scripts.at(key);
        const auto& s = *w.script;
        a[0].add(std::string_view(key));
        a[1].add(s.id);
        a[2].add(s.app_id);
        a[3].add(s.host_domain);
        a[4].add(s.type);
        a[5].add(s.vendor);
        a[6].add(timestamp(s.first_seen));
        a[7].add(timestamp(s.last_seen));
        a[8].add(s.users_affected_percentage);
        a[9].add(flag(s.ack));
        a[10].add(s.risk_level);
        a[11].add(s.risk_reason);
        a[12].add(w.hash);
        hashes_of_unknown.arrays[0].add(std::string_view(key));
        hashes_of_unknown.arrays[1].add(w.hash);
        for (auto p = s.page_types.begin(); p != s.page_types.end(); ++p) {
            if (std::find(s.page_types.begin(), p, *p) != p) continue;  // a repeated page type: once
            page_types.arrays[0].add(std::string_view(key));
            page_types.arrays[1].add(std::string_view(*p));
        }
        script_cache_[key] = w.hash;  // forgotten if the transaction rolls back
    }
    conn_.defer(
        {"DELETE FROM script_page_types p USING scripts s, unnest($1::text[], $2::bigint[]) AS u(k, h) "
         "WHERE s.key = u.k AND s.content_hash IS DISTINCT FROM u.h AND p.script_key = s.script_key",
         hashes_of_unknown.bind(),
         {},
         hashes_of_unknown.formats()});
    conn_.defer(
        {"INSERT INTO scripts (key, id, app_id, host_domain, type, vendor, first_seen, last_seen, "
         "users_affected_percentage, ack, risk_level, risk_reason, content_hash) "
         "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
         "$7::timestamptz[], $8::timestamptz[], $9::float8[], $10::smallint[], $11::text[], $12::text[], "
         "$13::bigint[]) "
         "ON CONFLICT (key) DO UPDATE SET id = EXCLUDED.id, app_id = EXCLUDED.app_id, "
         "host_domain = EXCLUDED.host_domain, type = EXCLUDED.type, vendor = EXCLUDED.vendor, "
         "first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, "
         "users_affected_percentage = EXCLUDED.users_affected_percentage, ack = EXCLUDED.ack, "
         "risk_level = EXCLUDED.risk_level, risk_reason = EXCLUDED.risk_reason, content_hash = EXCLUDED.content_hash "
         "WHERE scripts.content_hash IS DISTINCT FROM EXCLUDED.content_hash",
         c.bind(),
         {},
         c.formats()});
    if (!page_types.empty())
        conn_.defer(
            {"INSERT INTO script_page_types (script_key, page_type) SELECT s.script_key, u.t "
             "FROM unnest($1::text[], $2::text[]) AS u(k, t) JOIN scripts s ON s.key = u.k "
             "ON CONFLICT DO NOTHING",
             page_types.bind(),
             {},
             page_types.formats()});
}

void pg_incident_writer::record_changes(std::span<const model::incident* const> changed, const stored_map& stored,
                                        const std::string& now_text) {
    std::vector<std::int64_t> keys;
    for (const auto* inc : changed) keys.push_back(stored.at(inc->id).incident_key);
    const std::string key_list = ids_of(keys).value();

    std::unordered_map<std::int64_t, std::vector<std::string>> old_actions, old_vulns;
    // Both reads in one round trip.
    conn_.defer({"SELECT incident_key, type, subtype FROM actions WHERE incident_key = ANY($1::bigint[])",
                 {key_list},
                 [&](const pg_result& actions) {
                     for (int i = 0; i < actions.rows(); ++i)
                         old_actions[actions.int64(i, 0)].push_back(
                             store::action_item(actions.text(i, 1), actions.text(i, 2)));
                 }});
    // COLLATE "C": the ids in byte order, as set_text() sorts the new ones.
    auto vulns = conn_.exec(
        "SELECT v.incident_key, v.package, v.version, (SELECT string_agg(vi.vulnerability_id, ', ' ORDER BY "
        "vi.vulnerability_id COLLATE \"C\") FROM vulnerability_ids vi WHERE vi.incident_key = v.incident_key AND "
        "vi.vulnerability_ordinal = v.ordinal) FROM vulnerabilities v WHERE v.incident_key = ANY($1::bigint[])",
        {key_list});
    for (int i = 0; i < vulns.rows(); ++i)
        old_vulns[vulns.int64(i, 0)].push_back(
            store::vulnerability_item(vulns.text(i, 1), vulns.text(i, 2), vulns.text(i, 3)));

    columns c(4, {1, 2, 3});  // incident_key, field, old_value, new_value
    const auto add = [&](std::int64_t key, const char* field, const std::optional<std::string>& old_value,
                         const std::optional<std::string>& new_value) {
        if (old_value == new_value) return;
        c.arrays[0].add(key);
        c.arrays[1].add(std::string_view(field));
        c.arrays[2].add(old_value);
        c.arrays[3].add(new_value);
    };
    for (const auto* inc : changed) {
        const auto& s = stored.at(inc->id);
        const auto key = s.incident_key;
        add(key, "risk_level", s.risk_level, inc->risk_level);
        add(key, "under_review", s.under_review, bool_text(inc->under_review));
        add(key, "category", s.category, inc->category);
        add(key, "ack_updated_at", s.ack_updated_at, timestamp(inc->ack_updated_at));
        add(key, "script_risk", s.script_risk, inc->script ? inc->script->risk_level : std::nullopt);
        add(key, "actions", store::set_text(std::move(old_actions[key]), ", "), store::action_set(*inc));
        add(key, "vulnerabilities", store::set_text(std::move(old_vulns[key]), "; "), store::vulnerability_set(*inc));
    }
    if (c.empty()) return;
    params p = c.bind();
    p.emplace_back(now_text);
    conn_.defer(
        {"INSERT INTO incident_changes (incident_key, observed_at, field, old_value, new_value) "
         "SELECT u.k, $5::timestamptz, u.f, u.o, u.n FROM unnest($1::bigint[], $2::text[], $3::text[], "
         "$4::text[]) AS u(k, f, o, n)",
         std::move(p),
         {},
         c.formats()});
}

void pg_incident_writer::delete_children(const std::vector<std::int64_t>& incident_keys) {
    const std::string keys = ids_of(incident_keys).value();
    for (const char* table : {"incident_page_types", "action_args", "actions", "vulnerability_ids", "vulnerabilities"})
        conn_.defer({std::string("DELETE FROM ") + table + " WHERE incident_key = ANY($1::bigint[])", {keys}});
}

void pg_incident_writer::insert_children(std::span<const model::incident* const> incidents,
                                         const std::unordered_map<std::string_view, std::int64_t>& keys) {
    columns page_types(4, {1}), actions(5, {2, 3}), args(4, {2, 3}), vulns(4, {2, 3}), vuln_ids(6, {2, 3, 4});
    for (const auto* inc : incidents) {
        const std::int64_t key = keys.at(inc->id);
        for (std::size_t i = 0; i < inc->page_types.size(); ++i) {
            const auto& p = inc->page_types[i];
            // A repeated name: the first counts (SQLite's INSERT OR IGNORE).
            const auto same = [&](const model::page_type& earlier) { return earlier.name == p.name; };
            if (std::any_of(inc->page_types.begin(), inc->page_types.begin() + static_cast<std::ptrdiff_t>(i), same))
                continue;
            page_types.arrays[0].add(key);
            page_types.arrays[1].add(std::string_view(p.name));
            page_types.arrays[2].add(std::int64_t{p.listed ? 1 : 0});
            page_types.arrays[3].add(p.percentage);
        }
        for (std::size_t i = 0; i < inc->actions.size(); ++i) {
            const auto& a = inc->actions[i];
            const auto ordinal = static_cast<std::int64_t>(i);
            actions.arrays[0].add(key);
            actions.arrays[1].add(ordinal);
            actions.arrays[2].add(a.type);
            actions.arrays[3].add(a.subtype);
            actions.arrays[4].add(timestamp(a.last_seen));
            for (auto arg = a.args.begin(); arg != a.args.end(); ++arg) {
                // A repeated name: the last one counts, as in SQLite's store.
                const auto same_name = [&](const auto& later) { return later.first == arg->first; };
                if (std::any_of(std::next(arg), a.args.end(), same_name)) continue;
                args.arrays[0].add(key);
                args.arrays[1].add(ordinal);
                args.arrays[2].add(std::string_view(arg->first));
                args.arrays[3].add(std::string_view(arg->second));
            }
        }
        const auto last_seen = timestamp(inc->last_seen);
        for (std::size_t i = 0; i < inc->vulnerabilities.size(); ++i) {
            const auto& v = inc->vulnerabilities[i];
            const auto ordinal = static_cast<std::int64_t>(i);
            vulns.arrays[0].add(key);
            vulns.arrays[1].add(ordinal);
            vulns.arrays[2].add(v.package);
            vulns.arrays[3].add(v.version);
            for (auto id_it = v.ids.begin(); id_it != v.ids.end(); ++id_it) {
                const auto& id = *id_it;
                if (std::find(v.ids.begin(), id_it, id) != id_it) continue;  // a repeated CVE: the first counts
                vuln_ids.arrays[0].add(key);
                vuln_ids.arrays[1].add(ordinal);
                vuln_ids.arrays[2].add(std::string_view(id));
                vuln_ids.arrays[3].add(v.package);
                vuln_ids.arrays[4].add(v.version);
                vuln_ids.arrays[5].add(last_seen);
            }
        }
    }
    // Rows are unique by their keys (repeats were dropped above, and a
    // rewritten incident's rows were deleted first), so plain INSERTs: ON
    // CONFLICT's speculative insertion cost a sixth of a backfill's time.
    const auto insert = [&](const columns& rows, const char* sql) {
        if (!rows.empty()) conn_.defer({sql, rows.bind(), {}, rows.formats()});
    };
    insert(page_types,
           "INSERT INTO incident_page_types (incident_key, page_type, listed, percentage) SELECT * FROM "
           "unnest($1::bigint[], $2::text[], $3::smallint[], $4::float8[])");
    insert(actions,
           "INSERT INTO actions (incident_key, ordinal, type, subtype, last_seen) SELECT * FROM unnest($1::bigint[], "
           "$2::int[], $3::text[], $4::text[], $5::timestamptz[])");
    insert(args,
           "INSERT INTO action_args (incident_key, action_ordinal, name, value) SELECT * FROM unnest($1::bigint[], "
           "$2::int[], $3::text[], $4::text[])");
    insert(vulns,
           "INSERT INTO vulnerabilities (incident_key, ordinal, package, version) SELECT * FROM "
           "unnest($1::bigint[], $2::int[], $3::text[], $4::text[])");
    insert(vuln_ids,
           "INSERT INTO vulnerability_ids (incident_key, vulnerability_ordinal, vulnerability_id, package, version, "
           "incident_last_seen) SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], "
           "$6::timestamptz[])");
}

}  // namespace isync::pgstore
