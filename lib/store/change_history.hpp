#pragma once
// What changed, for readers: an `incident_changes` row for each tracked field
// that a rewrite of an incident changes (risk_level, under_review, category,
// ack_updated_at, script_risk, and the sets of its actions and its
// vulnerabilities), and the JSON paths the API sent that the schema does not
// map (`unknown_fields`, each logged once, when its transaction commits).

#include "model/incident.hpp"
#include "store/statements.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace isync::store {

class change_history {
public:
    // Prepares its statements through `statements`; `db` must outlive it.
    change_history(SQLite::Database& db, statement_registry& statements);

    // Incident `incident_key` is about to be rewritten as `inc`: adds a row,
    // observed at `now_text`, for each tracked field whose stored value
    // differs. It reads the stored row and child rows, so it runs before the
    // update and after the child rows batched so far are inserted. Throws
    // like any statement.
    void record_changes(std::int64_t incident_key, const model::incident& inc, const std::string& now_text);

    // Adds the paths of `fields` that unknown_fields does not hold yet; the
    // warning for each new one waits for committed(). Throws like any statement.
    void record_unknown_fields(std::span<const model::unknown_field> fields, const std::string& now_text);

    // The transaction committed: its paths count as recorded, and their
    // warnings are logged.
    void committed();
    // The transaction rolled back: forgets its paths and drops their warnings.
    void forget_uncommitted() noexcept;

private:
    SQLite::Database& db_;
    SQLite::Statement& select_tracked_;
    SQLite::Statement& select_action_set_;
    SQLite::Statement& select_vulnerability_set_;
    SQLite::Statement& insert_change_;
    SQLite::Statement& insert_unknown_field_;
    std::unordered_map<std::string, bool> unknown_fields_recorded_;  // path -> committed
    std::vector<std::string> pending_warnings_;                      // logged once the page commits
};

// A set as history shows it: sorted (by bytes), distinct, joined by `separator`.
std::string set_text(std::vector<std::string> items, std::string_view separator);
// One action of the actions set: `type/subtype`.
std::string action_item(std::string_view type, std::string_view subtype);
// One vulnerability of the vulnerabilities set: `package@version (ids)`.
std::string vulnerability_item(std::string_view package, std::string_view version, std::string_view ids);

// The set of an incident's actions as history shows it: sorted, distinct
// `type/subtype`, comma separated ("" when none).
std::string action_set(const model::incident& inc);

// The set of its vulnerabilities: sorted `package@version (CVE, ...)`, "; " separated.
std::string vulnerability_set(const model::incident& inc);

}  // namespace isync::store
