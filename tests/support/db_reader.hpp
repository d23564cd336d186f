#pragma once
// Reads incidents back out of an incident-sync database into the model, so
// tests compare what landed with what the API served, field by field.

#include "model/incident.hpp"

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace test_support {

// The incident with text id `id`, rebuilt from every table; nullopt if absent.
std::optional<isync::model::incident> read_incident(SQLite::Database& db, std::string_view id);

// `inc` with its unordered collections in the order the database returns
// them: JSON object members (action args) and sets (script page types,
// CVE ids) carry no order, so the tables key them by value.
isync::model::incident in_database_order(isync::model::incident inc);

// Every incident id in the database.
std::vector<std::string> incident_ids(SQLite::Database& db);

// Row count of every table (for "a second pass changes nothing").
std::map<std::string, std::int64_t> row_counts(SQLite::Database& db);

// Watermark of a pair, nullopt when none.
std::optional<std::int64_t> watermark(SQLite::Database& db, std::string_view app_id, std::string_view tld);

}  // namespace test_support
