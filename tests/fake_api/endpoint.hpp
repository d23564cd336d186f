#pragma once
// `GET /v1/incidents` as a pure function from a request to a reply: routing,
// the bearer token, parameter validation and the page body. No sockets, so the
// server's socket code only moves bytes and injects faults.

#include "fake_api/dataset.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fake_api {

// How the API refuses a request for an appId the token may not read.
enum class app_refusal : unsigned {
    unauthorized = 401,  // {"message":"Unauthorized"}, as for a token scoped to other applications
    forbidden = 403,     // {"message":"Forbidden"}
    invalid = 422,       // {"message":"Invalid appId <appId>"}, as for an appId the account does not have
};

struct endpoint_config {
    std::string token = "test-token";
    std::vector<std::string> other_tokens{};  // accepted too (one per replica, to tell them apart)
    // A `take` above this is clamped to it, and the paging URLs show the
    // clamped value. The real API's maximum is undocumented; 1000 keeps a page
    // under ~2 MB.
    std::size_t take_cap = 1000;
    // Base of paging.previous/current/next. Deliberately not the server's own
    // address: the documented example's `next` points at an internal host,
    // which is why the daemon must never follow it.
    std::string paging_base_url = "http://incidents-api.internal:8080";
    // appIds refused whatever the token, after the token and parameter checks.
    std::map<std::string, app_refusal> refused_app_ids{};
    // A search backend's bound on paging depth: a request with skip + take
    // above it gets 400 with Elasticsearch's words ("Result window is too
    // large ..."). 0: no bound.
    std::uint64_t max_result_window = 0;
    // The body of GET /v1/account-settings (fake_api/account.hpp).
    std::string account_settings = "{\"applications\":[]}";
};

struct incidents_query {
    std::vector<std::string> app_ids;
    std::vector<std::string> tlds;
    std::int64_t from_ms = 0;
    std::int64_t to_ms = 0;
    std::uint64_t skip = 0;
    std::uint64_t take = 20;
};

// The query string of `target` read as GET /v1/incidents parameters, with the
// documented defaults (from = now - 24 h, to = now, skip 0, take 20) and take
// clamped to `take_cap`; errc::bad_request with the 422 message when appId or
// tld is missing or a number is not a non-negative integer. Unknown
// parameters are ignored; from >= to is not an error but an empty window, and
// an unknown (appId, tld) pair matches nothing (the real API's answers to
// either are undocumented).
isync::result<incidents_query> parse_incidents_query(std::string_view target, std::int64_t now_ms,
                                                     std::size_t take_cap);

struct reply {
    unsigned status = 200;
    std::string body;           // always JSON
    std::size_t incidents = 0;  // incidents in the body
};

// `{"message":"..."}`.
std::string message_body(std::string_view message);

// The reply that refuses `app_id`: the status and its `{"message":...}` body.
reply refusal_reply(std::string_view app_id, app_refusal refusal);

// The whole exchange: GET /v1/account-settings answers config.account_settings
// (after the token check); for /v1/incidents: 404 for another path, 405 for another method, 401 for a
// missing or wrong `Authorization: Bearer <token>`, 422 for bad parameters,
// the refusal of the first requested appId in `refused_app_ids`, 400 past
// `max_result_window`, else 200 with the page.
reply handle_request(std::string_view method, std::string_view target, std::string_view authorization,
                     const dataset& data, const endpoint_config& config, std::int64_t now_ms);

}  // namespace fake_api
