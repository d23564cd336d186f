#pragma once
// The typed view of one incident as `GET /v1/incidents` sends it (api/page_parser
// fills it). Every field but `id` may be missing or null, so
// each is optional; timestamps are already normalised to UTC
// `YYYY-MM-DDTHH:MM:SS.sssZ` by the parser.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace isync::model {

struct script {
    std::optional<std::string> key;  // the script's stable key; scripts are shared by incidents
    std::optional<std::string> id;
    std::optional<std::string> app_id;
    std::optional<std::string> host_domain;
    std::optional<std::string> type;
    std::optional<std::string> vendor;
    std::optional<std::string> first_seen;
    std::optional<std::string> last_seen;
    std::optional<double> users_affected_percentage;
    std::optional<bool> ack;
    std::optional<std::string> risk_level;
    std::optional<std::string> risk_reason;
    std::vector<std::string> page_types;

    bool operator==(const script&) const = default;
};

// One row of the union of `page_types` (listed) and `page_types_per` (percentage).
struct page_type {
    std::string name;
    bool listed = false;
    std::optional<double> percentage;

    bool operator==(const page_type&) const = default;
};

struct action {
    std::optional<std::string> type;
    std::optional<std::string> subtype;
    std::optional<std::string> last_seen;
    std::vector<std::pair<std::string, std::string>> args;  // in the order received

    bool operator==(const action&) const = default;
};

struct vulnerability {
    std::optional<std::string> package;
    std::optional<std::string> version;
    std::vector<std::string> ids;  // CVE ids

    bool operator==(const vulnerability&) const = default;
};

// The hashes the store compares (see store::hashes_of). Computed on the
// event loop, which has CPU to spare while the writer thread is the limit.
struct incident_hashes {
    std::int64_t content = 0;    // of raw_json
    std::int64_t substance = 0;  // of the content but its last_seen times
    std::int64_t script = 0;     // of the script's fields (0 without a script)
    bool operator==(const incident_hashes&) const = default;
};

struct incident {
    std::string id;
    std::optional<std::string> app_id;
    std::optional<std::string> host_domain;
    std::optional<std::string> category;
    std::optional<std::string> title;  // the API's `incident` field
    std::optional<std::string> details;
    std::optional<std::string> initiator;
    std::optional<std::string> first_seen;
    std::optional<std::string> last_seen;
    std::optional<std::string> ack_updated_at;
    std::optional<bool> under_review;
    std::optional<std::string> risk_level;
    std::vector<page_type> page_types;           // sorted by name
    std::optional<isync::model::script> script;  // qualified: the member shares the type's name
    std::vector<action> actions;
    std::vector<vulnerability> vulnerabilities;
    std::string raw_json;                   // the incident object exactly as received
    std::optional<incident_hashes> hashes;  // empty: the store computes them

    bool operator==(const incident&) const = default;
};

// A field the schema does not know, found in an incident (schema drift).
struct unknown_field {
    std::string json_path;    // e.g. `$.script.new_flag`, `$.actions[].weight`
    std::string incident_id;  // an example incident carrying it
};

// An incident not yet typed: enough to tell whether the stored copy is the same.
struct raw_incident {
    std::string id;
    std::string raw_json;           // the incident object exactly as received
    std::int64_t content_hash = 0;  // util::hash_bytes(raw_json)
};

// One response page of GET /v1/incidents: typed incidents, or (parsed with
// parse_mode::untyped) raw ones, to be typed only if they changed.
struct page {
    std::int64_t count = 0;  // paging.count: incidents matching the query, all pages
    std::vector<incident> incidents;
    std::vector<unknown_field> unknown_fields;  // distinct paths on this page (typed only)
    std::vector<raw_incident> untyped;
};

}  // namespace isync::model
