#pragma once
// Parses one response body of GET /v1/incidents into typed incidents, keeping
// each incident's JSON text exactly as received. Sans-io: bytes in, structs out.

#include "model/incident.hpp"
#include "util/error.hpp"

#include <span>
#include <string_view>

namespace isync::api {

// Nesting deeper than this is refused (the real API nests 4 levels).
inline constexpr int max_json_depth = 64;

// Returns the page, or errc::parse with a message that names the JSON path
// (e.g. `$.data[3].id`) and quotes the bytes around the problem. Fields other
// than `id` may be missing, null or of an unexpected type: they become empty
// (the raw JSON keeps them); unknown fields are kept in the raw JSON.
// With parse_mode::untyped the page is checked the same way, but incidents
// are only cut out (id, exact bytes, content hash) into page::untyped: a
// re-read of unchanged data then never builds the typed model.
enum class parse_mode { typed, untyped };
result<model::page> parse_page(std::string_view body, parse_mode mode = parse_mode::typed);

// Types incidents cut out by an untyped parse (each one JSON object).
result<model::page> parse_incident_objects(std::span<const std::string_view> objects);

}  // namespace isync::api
