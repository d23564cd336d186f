#include "support/db_reader.hpp"

#include <SQLiteCpp/Statement.h>

#include <algorithm>

namespace test_support {
namespace {

std::optional<std::string> text(SQLite::Statement& st, int i) {
    if (st.getColumn(i).isNull()) return std::nullopt;
    return st.getColumn(i).getString();
}

std::optional<bool> boolean(SQLite::Statement& st, int i) {
    if (st.getColumn(i).isNull()) return std::nullopt;
    return st.getColumn(i).getInt() != 0;
}

std::optional<double> real(SQLite::Statement& st, int i) {
    if (st.getColumn(i).isNull()) return std::nullopt;
    return st.getColumn(i).getDouble();
}

isync::model::script read_script(SQLite::Database& db, std::int64_t script_key) {
    SQLite::Statement st(db,
                         "SELECT key, id, app_id, host_domain, type, vendor, first_seen, last_seen, "
                         "users_affected_percentage, ack, risk_level, risk_reason FROM scripts WHERE script_key = ?");
    st.bind(1, script_key);
    st.executeStep();
    isync::model::script s;
    s.key = text(st, 0);
    if (s.key && s.key->starts_with("id:")) s.key.reset();  // the store's fallback key for key-less scripts
    s.id = text(st, 1);
    s.app_id = text(st, 2);
    s.host_domain = text(st, 3);
    s.type = text(st, 4);
    s.vendor = text(st, 5);
    s.first_seen = text(st, 6);
    s.last_seen = text(st, 7);
    s.users_affected_percentage = real(st, 8);
    s.ack = boolean(st, 9);
    s.risk_level = text(st, 10);
    s.risk_reason = text(st, 11);
    SQLite::Statement pt(db, "SELECT page_type FROM script_page_types WHERE script_key = ? ORDER BY page_type");
    pt.bind(1, script_key);
    while (pt.executeStep()) s.page_types.push_back(pt.getColumn(0).getString());
    return s;
}

}  // namespace

std::optional<isync::model::incident> read_incident(SQLite::Database& db, std::string_view id) {
    SQLite::Statement st(db,
                         "SELECT incident_key, id, app_id, host_domain, category, incident, details, initiator, "
                         "first_seen, last_seen, ack_updated_at, under_review, risk_level, script_key, raw_json "
                         "FROM incidents WHERE id = ?");
    st.bind(1, std::string(id));
    if (!st.executeStep()) return std::nullopt;
    isync::model::incident inc;
    const std::int64_t key = st.getColumn(0).getInt64();
    inc.id = st.getColumn(1).getString();
    inc.app_id = text(st, 2);
    inc.host_domain = text(st, 3);
    inc.category = text(st, 4);
    inc.title = text(st, 5);
    inc.details = text(st, 6);
    inc.initiator = text(st, 7);
    inc.first_seen = text(st, 8);
    inc.last_seen = text(st, 9);
    inc.ack_updated_at = text(st, 10);
    inc.under_review = boolean(st, 11);
    inc.risk_level = text(st, 12);
    if (!st.getColumn(13).isNull()) inc.script = read_script(db, st.getColumn(13).getInt64());
    inc.raw_json = st.getColumn(14).getString();

    SQLite::Statement pt(db,
                         "SELECT page_type, listed, percentage FROM incident_page_types WHERE incident_key = ? "
                         "ORDER BY page_type");
    pt.bind(1, key);
    while (pt.executeStep())
        inc.page_types.push_back({pt.getColumn(0).getString(), pt.getColumn(1).getInt() != 0, real(pt, 2)});

    SQLite::Statement act(
        db, "SELECT ordinal, type, subtype, last_seen FROM actions WHERE incident_key = ? ORDER BY ordinal");
    SQLite::Statement args(db,
                           "SELECT name, value FROM action_args WHERE incident_key = ? AND action_ordinal = ? "
                           "ORDER BY name");
    act.bind(1, key);
    while (act.executeStep()) {
        isync::model::action a;
        a.type = text(act, 1);
        a.subtype = text(act, 2);
        a.last_seen = text(act, 3);
        args.bind(1, key);
        args.bind(2, act.getColumn(0).getInt64());
        while (args.executeStep()) a.args.emplace_back(args.getColumn(0).getString(), args.getColumn(1).getString());
        args.reset();
        inc.actions.push_back(std::move(a));
    }

    SQLite::Statement vul(
        db, "SELECT ordinal, package, version FROM vulnerabilities WHERE incident_key = ? ORDER BY ordinal");
    SQLite::Statement ids(db,
                          "SELECT vulnerability_id FROM vulnerability_ids WHERE incident_key = ? AND "
                          "vulnerability_ordinal = ? ORDER BY vulnerability_id");
    vul.bind(1, key);
    while (vul.executeStep()) {
        isync::model::vulnerability v;
        v.package = text(vul, 1);
        v.version = text(vul, 2);
        ids.bind(1, key);
        ids.bind(2, vul.getColumn(0).getInt64());
        while (ids.executeStep()) v.ids.push_back(ids.getColumn(0).getString());
        ids.reset();
        inc.vulnerabilities.push_back(std::move(v));
    }
    return inc;
}

isync::model::incident in_database_order(isync::model::incident inc) {
    if (inc.script) std::sort(inc.script->page_types.begin(), inc.script->page_types.end());
    for (auto& a : inc.actions) std::sort(a.args.begin(), a.args.end());
    for (auto& v : inc.vulnerabilities) std::sort(v.ids.begin(), v.ids.end());
    return inc;
}

std::vector<std::string> incident_ids(SQLite::Database& db) {
    std::vector<std::string> out;
    SQLite::Statement st(db, "SELECT id FROM incidents ORDER BY id");
    while (st.executeStep()) out.push_back(st.getColumn(0).getString());
    return out;
}

std::map<std::string, std::int64_t> row_counts(SQLite::Database& db) {
    std::map<std::string, std::int64_t> out;
    for (const char* table :
         {"incidents", "scripts", "script_page_types", "incident_page_types", "actions", "action_args",
          "vulnerabilities", "vulnerability_ids", "sync_state", "incident_changes", "unknown_fields"}) {
        out[table] = db.execAndGet(std::string("SELECT COUNT(*) FROM ") + table).getInt64();
    }
    return out;
}

std::optional<std::int64_t> watermark(SQLite::Database& db, std::string_view app_id, std::string_view tld) {
    SQLite::Statement st(db, "SELECT watermark_ms FROM sync_state WHERE app_id = ? AND tld = ?");
    st.bind(1, std::string(app_id));
    st.bind(2, std::string(tld));
    if (!st.executeStep() || st.getColumn(0).isNull()) return std::nullopt;
    return st.getColumn(0).getInt64();
}

}  // namespace test_support
