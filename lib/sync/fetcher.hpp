#pragma once
// Fetching one page with the retry policy: backoff with full jitter for
// transient failures, Retry-After for 429, no retry for 401/403/422.

#include "api/backoff.hpp"
#include "api/page_parser.hpp"
#include "api/request.hpp"
#include "model/incident.hpp"
#include "sync/page_source.hpp"
#include "sync/sync_stats.hpp"
#include "util/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>

namespace isync::sync {

struct fetch_context {
    page_source& source;
    const api::endpoint& endpoint;
    const api::backoff& backoff;
    std::function<std::int64_t()> now_ms;  // wall clock, for Retry-After dates
    sync_stats& stats;
    api::parse_mode mode = api::parse_mode::typed;
};

// With `parse`, the parsed page (in ctx.mode); without, the page's body,
// judged (status, Content-Type) but not parsed: for pages fetched ahead of a
// walk, which wait as bytes (a third of their parsed size) until the walk
// takes them, and are fetched again with `parse` if they then do not parse.
// Or the last error once retries are exhausted (its code says what failed),
// errc::auth / errc::bad_request at once, or errc::cancelled when the
// coroutine was cancelled.
using fetched_page = std::variant<model::page, std::string>;

// Takes a 200 JSON body; an error means the body is broken and is retried
// like a truncated one.
using body_acceptor = std::function<result<void>(std::string body)>;
// Told before each retry's wait: which attempt failed, why, and the wait.
using retry_logger = std::function<void(int attempt, const error& failure, std::chrono::milliseconds delay)>;

// GET `target` under the retry policy until `accept` takes a body; the
// attempts it took. The same errors as below.
boost::asio::awaitable<result<int>> fetch_with_retries(fetch_context ctx, std::string target, body_acceptor accept,
                                                       retry_logger on_retry);

boost::asio::awaitable<result<fetched_page>> fetch_page_or_body(fetch_context ctx, api::incidents_query query,
                                                                bool parse);

}  // namespace isync::sync
