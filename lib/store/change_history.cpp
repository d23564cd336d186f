#include "store/change_history.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string_view>

namespace isync::store {
namespace {

std::optional<std::string> bool_text(const std::optional<bool>& b) {
    if (!b) return std::nullopt;
    return *b ? "true" : "false";
}

std::optional<std::string> column_text(SQLite::Statement& st, int i) {
    if (st.getColumn(i).isNull()) return std::nullopt;
    return st.getColumn(i).getString();
}

}  // namespace

std::string set_text(std::vector<std::string> items, std::string_view separator) {
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : std::string(separator)) + i;
    return out;
}

std::string action_item(std::string_view type, std::string_view subtype) {
    return std::string(type) + "/" + std::string(subtype);
}

std::string vulnerability_item(std::string_view package, std::string_view version, std::string_view ids) {
    return std::string(package) + "@" + std::string(version) + " (" + std::string(ids) + ")";
}

std::string action_set(const model::incident& inc) {
    std::vector<std::string> items;
    for (const auto& a : inc.actions) items.push_back(action_item(a.type.value_or(""), a.subtype.value_or("")));
    return set_text(std::move(items), ", ");
}

std::string vulnerability_set(const model::incident& inc) {
    std::vector<std::string> items;
    for (const auto& v : inc.vulnerabilities)
        items.push_back(vulnerability_item(v.package.value_or(""), v.version.value_or(""), set_text(v.ids, ", ")));
    return set_text(std::move(items), "; ");
}

change_history::change_history(SQLite::Database& db, statement_registry& statements)
    : db_(db),
      select_tracked_(statements.make("SELECT risk_level, under_review, category, ack_updated_at, script_risk_level "
                                      "FROM incidents WHERE incident_key = ?")),
      select_action_set_(statements.make("SELECT type, subtype FROM actions WHERE incident_key = ?")),
      select_vulnerability_set_(
          statements.make("SELECT v.package, v.version, (SELECT group_concat(vulnerability_id, ', ') FROM "
                          "(SELECT vulnerability_id FROM vulnerability_ids vi WHERE vi.incident_key = "
                          "v.incident_key AND vi.vulnerability_ordinal = v.ordinal ORDER BY vulnerability_id)) "
                          "FROM vulnerabilities v WHERE v.incident_key = ?")),
      insert_change_(statements.make("INSERT INTO incident_changes (incident_key, observed_at, field, old_value, "
                                     "new_value) VALUES (?,?,?,?,?)")),
      insert_unknown_field_(statements.make("INSERT OR IGNORE INTO unknown_fields (json_path, first_seen_at, "
                                            "example_incident_id) VALUES (?,?,?)")) {}

void change_history::record_changes(std::int64_t incident_key, const model::incident& inc,
                                    const std::string& now_text) {
    select_tracked_.bind(1, incident_key);
    if (!select_tracked_.executeStep()) {
        select_tracked_.reset();
        return;
    }
    struct tracked {
        const char* field;
        std::optional<std::string> old_value;
        std::optional<std::string> new_value;
    };
    std::vector<tracked> fields{
        {"risk_level", column_text(select_tracked_, 0), inc.risk_level},
        {"under_review",
         select_tracked_.getColumn(1).isNull()
             ? std::nullopt
             : std::optional<std::string>(select_tracked_.getColumn(1).getInt() ? "true" : "false"),
         bool_text(inc.under_review)},
        {"category", column_text(select_tracked_, 2), inc.category},
        {"ack_updated_at", column_text(select_tracked_, 3), inc.ack_updated_at},
        {"script_risk", column_text(select_tracked_, 4), inc.script ? inc.script->risk_level : std::nullopt},
    };
    select_tracked_.reset();

    std::vector<std::string> old_actions;
    select_action_set_.bind(1, incident_key);
    while (select_action_set_.executeStep()) {
        old_actions.push_back(action_item(column_text(select_action_set_, 0).value_or(""),
                                          column_text(select_action_set_, 1).value_or("")));
    }
    select_action_set_.reset();
    fields.push_back({"actions", set_text(std::move(old_actions), ", "), action_set(inc)});

    std::vector<std::string> old_vulns;
    select_vulnerability_set_.bind(1, incident_key);
    while (select_vulnerability_set_.executeStep()) {
        old_vulns.push_back(vulnerability_item(column_text(select_vulnerability_set_, 0).value_or(""),
                                               column_text(select_vulnerability_set_, 1).value_or(""),
                                               column_text(select_vulnerability_set_, 2).value_or("")));
    }
    select_vulnerability_set_.reset();
    fields.push_back({"vulnerabilities", set_text(std::move(old_vulns), "; "), vulnerability_set(inc)});

    for (const auto& f : fields) {
        if (f.old_value == f.new_value) continue;
        insert_change_.bind(1, incident_key);
        insert_change_.bind(2, now_text);
        insert_change_.bind(3, f.field);
        bind_optional(insert_change_, 4, f.old_value);
        bind_optional(insert_change_, 5, f.new_value);
        run(insert_change_);
    }
}

void change_history::record_unknown_fields(std::span<const model::unknown_field> fields, const std::string& now_text) {
    for (const auto& f : fields) {
        if (unknown_fields_recorded_.contains(f.json_path)) continue;
        insert_unknown_field_.bind(1, f.json_path);
        insert_unknown_field_.bind(2, now_text);
        insert_unknown_field_.bind(3, f.incident_id);
        run(insert_unknown_field_);
        if (db_.getChanges() == 1)
            pending_warnings_.push_back(fmt::format(
                "the API sent a field the schema does not know: {} (e.g. incident {}); it is kept in raw_json and "
                "listed in the unknown_fields table",
                f.json_path, f.incident_id));
        // false until the transaction commits; a rollback forgets it.
        unknown_fields_recorded_[f.json_path] = false;
    }
}

void change_history::committed() {
    for (auto& [_, committed] : unknown_fields_recorded_) committed = true;
    for (const auto& w : pending_warnings_) spdlog::warn("{}", w);
    pending_warnings_.clear();
}

void change_history::forget_uncommitted() noexcept {
    for (auto it = unknown_fields_recorded_.begin(); it != unknown_fields_recorded_.end();)
        it = it->second ? std::next(it) : unknown_fields_recorded_.erase(it);  // keep only committed ones
    pending_warnings_.clear();
}

}  // namespace isync::store
