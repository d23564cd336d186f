#pragma once
// Parses one response body of GET /v1/incidents into typed incidents, keeping
// each incident's JSON text exactly as received. Sans-io: bytes in, structs out.

#include "model/incident.hpp"
#include "util/error.hpp"

#include <string_view>

namespace isync::api {

// Nesting deeper than this is refused (the real API nests 4 levels).
inline constexpr int max_json_depth = 64;

// Returns the page, or errc::parse with a message that names the JSON path
// (e.g. `$.data[3].id`) and quotes the bytes around the problem. Fields other
// than `id` may be missing, null or of an unexpected type: they become empty
// (the raw JSON keeps them); unknown fields are kept in the raw JSON.
result<model::page> parse_page(std::string_view body);

}  // namespace isync::api
