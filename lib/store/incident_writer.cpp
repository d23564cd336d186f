#include "store/incident_writer.hpp"

#include "store/hashing.hpp"
#include "util/hash.hpp"

#include <algorithm>
#include <iterator>

namespace isync::store {
namespace {

constexpr const char* incident_columns =
    "id, app_id, host_domain, category, incident, details, initiator, first_seen, last_seen, ack_updated_at, "
    "under_review, risk_level, script_key, raw_json, content_hash, substance_hash";

// Binds the 16 incident columns above, in order, starting at index 1, and the
// script's risk as ?18 (?17, the time, is bound by the caller).
void bind_incident(SQLite::Statement& st, const model::incident& inc, std::optional<std::int64_t> script_key,
                   std::int64_t content_hash, std::int64_t substance) {
    st.bindNoCopy(1, inc.id);
    bind_optional(st, 2, inc.app_id);
    bind_optional(st, 3, inc.host_domain);
    bind_optional(st, 4, inc.category);
    bind_optional(st, 5, inc.title);
    bind_optional(st, 6, inc.details);
    bind_optional(st, 7, inc.initiator);
    bind_optional(st, 8, inc.first_seen);
    bind_optional(st, 9, inc.last_seen);
    bind_optional(st, 10, inc.ack_updated_at);
    bind_optional(st, 11, inc.under_review);
    bind_optional(st, 12, inc.risk_level);
    if (script_key)
        st.bind(13, *script_key);
    else
        st.bind(13);
    st.bindNoCopy(14, inc.raw_json);
    st.bind(15, content_hash);
    st.bind(16, substance);
    if (inc.script)
        bind_optional(st, 18, inc.script->risk_level);  // not a ?: copy: it would not outlive the bind
    else
        st.bind(18);
}

}  // namespace

incident_writer::incident_writer(SQLite::Database& db, statement_registry& statements, change_history& history,
                                 std::size_t pending_capacity)
    : db_(db),
      history_(history),
      pending_ids_(pending_capacity),
      // i.id = n.id: a row deleted by hand leaves its id here, and its key
      // may since belong to another incident.
      find_incident_(statements.make("SELECT n.incident_key, i.content_hash FROM incident_ids n "
                                     "JOIN incidents i ON i.incident_key = n.incident_key AND i.id = n.id "
                                     "WHERE n.id = ?")),
      find_by_key_(statements.make("SELECT content_hash FROM incidents WHERE incident_key = ?")),
      // OR REPLACE: an id whose row was deleted by hand gets its new key.
      insert_id_(statements.make("INSERT OR REPLACE INTO incident_ids (id, incident_key) VALUES (?, ?)")),
      insert_incident_(statements.make(std::string("INSERT INTO incidents (") + incident_columns +
                                       ", first_synced_at, last_synced_at, content_changed_at, script_risk_level) "
                                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, ?17, ?17, ?17, ?18)")),
      update_incident_(
          statements.make("UPDATE incidents SET app_id=?2, host_domain=?3, category=?4, incident=?5, details=?6, "
                          "initiator=?7, first_seen=?8, last_seen=?9, ack_updated_at=?10, under_review=?11, "
                          "risk_level=?12, script_key=?13, raw_json=?14, content_hash=?15, substance_hash=?16, "
                          "last_synced_at=?17, script_risk_level=?18, "
                          "content_changed_at=CASE WHEN substance_hash=?16 THEN content_changed_at ELSE ?17 END "
                          "WHERE incident_key=?19")),
      find_script_(statements.make("SELECT script_key, content_hash FROM scripts WHERE key = ?")),
      insert_script_(
          statements.make("INSERT INTO scripts (key, id, app_id, host_domain, type, vendor, first_seen, last_seen, "
                          "users_affected_percentage, ack, risk_level, risk_reason, content_hash) "
                          "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")),
      update_script_(
          statements.make("UPDATE scripts SET id=?2, app_id=?3, host_domain=?4, type=?5, vendor=?6, first_seen=?7, "
                          "last_seen=?8, users_affected_percentage=?9, ack=?10, risk_level=?11, risk_reason=?12, "
                          "content_hash=?13 WHERE key=?1")),
      delete_script_page_types_(statements.make("DELETE FROM script_page_types WHERE script_key = ?")),
      insert_script_page_type_(
          statements.make("INSERT OR IGNORE INTO script_page_types (script_key, page_type) VALUES (?,?)")),
      // OR IGNORE, although no child row can conflict (the children of a
      // rewritten incident are deleted first; ordinals, page type names and,
      // in write_children, arg names are unique per incident) and no NOT NULL
      // value is ever bound empty: a multi-row INSERT that could abort makes
      // SQLite keep a statement journal, which spilled 1.3 GB of 16 KiB pages
      // to a temporary file per 100k backfill (11% of the store's time).
      page_type_rows_(statements,
                      "INSERT OR IGNORE INTO incident_page_types (incident_key, page_type, listed, percentage) "
                      "VALUES",
                      4),
      action_rows_(statements, "INSERT OR IGNORE INTO actions (incident_key, ordinal, type, subtype, last_seen) VALUES",
                   5),
      action_arg_rows_(statements,
                       "INSERT OR IGNORE INTO action_args (incident_key, action_ordinal, name, value) VALUES", 4),
      vulnerability_rows_(statements,
                          "INSERT OR IGNORE INTO vulnerabilities (incident_key, ordinal, package, version) VALUES", 4),
      vulnerability_id_rows_(statements,
                             "INSERT OR IGNORE INTO vulnerability_ids (incident_key, vulnerability_ordinal, "
                             "vulnerability_id, package, version, incident_last_seen) VALUES",
                             6),
      delete_page_types_(statements.make("DELETE FROM incident_page_types WHERE incident_key = ?")),
      delete_actions_(statements.make("DELETE FROM actions WHERE incident_key = ?")),
      delete_action_args_(statements.make("DELETE FROM action_args WHERE incident_key = ?")),
      delete_vulnerabilities_(statements.make("DELETE FROM vulnerabilities WHERE incident_key = ?")),
      delete_vulnerability_ids_(statements.make("DELETE FROM vulnerability_ids WHERE incident_key = ?")) {}

std::optional<incident_writer::incident_row> incident_writer::find_incident(const std::string& id) {
    if (auto row = find_pending(id)) return row;
    find_incident_.bindNoCopy(1, id);
    std::optional<incident_row> row;
    if (find_incident_.executeStep())
        row = incident_row{find_incident_.getColumn(0).getInt64(), find_incident_.getColumn(1).getInt64()};
    find_incident_.reset();
    return row;
}

std::optional<incident_writer::incident_row> incident_writer::find_pending(const std::string& id) {
    const std::int64_t key = pending_ids_.find(id);
    if (key == pending_incident_ids::no_key) return std::nullopt;
    find_by_key_.bind(1, key);
    std::optional<incident_row> row;
    if (find_by_key_.executeStep()) row = incident_row{key, find_by_key_.getColumn(0).getInt64()};
    find_by_key_.reset();
    return row;
}

void incident_writer::flush_new_ids() {
    // One sorted pass: each leaf of incident_ids is written once per flush.
    std::string id_text;  // bound as text (a pointer and size alone would bind a blob)
    pending_ids_.for_each_in_id_order([&](std::string_view id, std::int64_t incident_key) {
        id_text.assign(id);
        insert_id_.bindNoCopy(1, id_text);
        insert_id_.bind(2, incident_key);
        run(insert_id_);
    });
    pending_ids_.clear();
}

std::optional<std::int64_t> incident_writer::stored_content_hash(const std::string& id) {
    const auto row = find_incident(id);
    return row ? std::optional<std::int64_t>(row->content_hash) : std::nullopt;
}

void incident_writer::upsert(const model::incident& inc, const std::string& now_text, upsert_counts& counts) {
    ++counts.seen;
    // Only the content hash until we know the incident must be written.
    const std::int64_t content = inc.hashes ? inc.hashes->content : util::hash_bytes(inc.raw_json);
    const auto stored = find_incident(inc.id);
    if (stored && stored->content_hash == content) {
        ++counts.unchanged;
        return;  // byte-identical to what we hold: write nothing
    }
    const std::optional<std::int64_t> existing_key =
        stored ? std::optional<std::int64_t>(stored->incident_key) : std::nullopt;

    const model::incident_hashes hashes = inc.hashes ? *inc.hashes : hashes_of(inc);
    // Assigned, not a conditional initialiser: GCC 12 then warns (falsely)
    // that the optional may be used uninitialised.
    std::optional<std::int64_t> script_key;
    if (inc.script) script_key = upsert_script(*inc.script, hashes.script);
    const std::int64_t substance = hashes.substance;
    std::int64_t incident_key;
    if (existing_key) {
        // The incident may be earlier in this page: its children must be in
        // their tables before they are compared and replaced.
        flush_children();
        history_.record_changes(*existing_key, inc, now_text);  // before the update: it reads the old row
        bind_incident(update_incident_, inc, script_key, content, substance);
        update_incident_.bindNoCopy(17, now_text);
        update_incident_.bind(19, *existing_key);
        run(update_incident_);
        incident_key = *existing_key;
        delete_children(incident_key);
        ++counts.changed;
    } else {
        bind_incident(insert_incident_, inc, script_key, content, substance);
        insert_incident_.bindNoCopy(17, now_text);
        run(insert_incident_);
        incident_key = db_.getLastInsertRowid();
        pending_ids_.add(inc.id, incident_key);
        if (pending_ids_.full()) flush_new_ids();
        ++counts.inserted;
    }
    write_children(incident_key, inc);
}

std::optional<std::int64_t> incident_writer::upsert_script(const model::script& s, std::int64_t hash) {
    auto share_key = script_share_key(s);
    if (!share_key) return std::nullopt;
    const std::string& key = *share_key;

    auto cached = script_cache_.find(key);
    if (cached != script_cache_.end() && cached->second.content_hash == hash) return cached->second.script_key;

    std::optional<script_row> row;
    if (cached != script_cache_.end()) {
        row = cached->second;
    } else {
        find_script_.bind(1, key);
        if (find_script_.executeStep())
            row = script_row{find_script_.getColumn(0).getInt64(), find_script_.getColumn(1).getInt64()};
        find_script_.reset();
    }
    if (row && row->content_hash == hash) {
        script_cache_[key] = *row;
        return row->script_key;
    }

    SQLite::Statement& st = row ? update_script_ : insert_script_;
    st.bind(1, key);
    bind_optional(st, 2, s.id);
    bind_optional(st, 3, s.app_id);
    bind_optional(st, 4, s.host_domain);
    bind_optional(st, 5, s.type);
    bind_optional(st, 6, s.vendor);
    bind_optional(st, 7, s.first_seen);
    bind_optional(st, 8, s.last_seen);
    bind_optional(st, 9, s.users_affected_percentage);
    bind_optional(st, 10, s.ack);
    bind_optional(st, 11, s.risk_level);
    bind_optional(st, 12, s.risk_reason);
    st.bind(13, hash);
    run(st);
    const std::int64_t script_key = row ? row->script_key : db_.getLastInsertRowid();

    delete_script_page_types_.bind(1, script_key);
    run(delete_script_page_types_);
    for (const auto& p : s.page_types) {
        insert_script_page_type_.bind(1, script_key);
        insert_script_page_type_.bind(2, p);
        run(insert_script_page_type_);
    }
    if (script_cache_.size() > 4096) script_cache_.clear();  // bound memory (~0.5 MiB) on huge accounts
    script_cache_[key] = script_row{script_key, hash};
    return script_key;
}

void incident_writer::delete_children(std::int64_t incident_key) {
    for (auto* st : {&delete_page_types_, &delete_action_args_, &delete_actions_, &delete_vulnerability_ids_,
                     &delete_vulnerabilities_}) {
        st->bind(1, incident_key);
        run(*st);
    }
}

void incident_writer::write_children(std::int64_t incident_key, const model::incident& inc) {
    // Collected here, inserted by flush_children() (multi-row INSERTs).
    for (const auto& p : inc.page_types)
        page_type_rows_.add({incident_key, &p.name, std::int64_t{p.listed ? 1 : 0}, row_batch::real(p.percentage)});
    for (std::size_t i = 0; i < inc.actions.size(); ++i) {
        const auto& a = inc.actions[i];
        const auto ordinal = static_cast<std::int64_t>(i);
        action_rows_.add(
            {incident_key, ordinal, row_batch::text(a.type), row_batch::text(a.subtype), row_batch::text(a.last_seen)});
        for (auto arg = a.args.begin(); arg != a.args.end(); ++arg) {
            // An object may repeat a name (JSON allows it): the last one counts,
            // as it did when this was INSERT OR REPLACE.
            const auto same_name = [&](const auto& later) { return later.first == arg->first; };
            if (std::any_of(std::next(arg), a.args.end(), same_name)) continue;
            action_arg_rows_.add({incident_key, ordinal, &arg->first, &arg->second});
        }
    }
    for (std::size_t i = 0; i < inc.vulnerabilities.size(); ++i) {
        const auto& v = inc.vulnerabilities[i];
        const auto ordinal = static_cast<std::int64_t>(i);
        vulnerability_rows_.add({incident_key, ordinal, row_batch::text(v.package), row_batch::text(v.version)});
        // package, version and the incident's last_seen are copied for vulnerable_packages (schema 004).
        for (const auto& id : v.ids)
            vulnerability_id_rows_.add({incident_key, ordinal, &id, row_batch::text(v.package),
                                        row_batch::text(v.version), row_batch::text(inc.last_seen)});
    }
}

void incident_writer::flush_children() {
    for (auto* rows : child_batches()) rows->flush();
}

void incident_writer::forget_uncommitted() noexcept {
    for (auto* rows : child_batches()) rows->clear();
    pending_ids_.clear();
    script_cache_.clear();
}

}  // namespace isync::store
