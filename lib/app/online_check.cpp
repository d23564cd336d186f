#include "app/online_check.hpp"

#include "api/outcome.hpp"
#include "api/page_parser.hpp"
#include "api/request.hpp"
#include "http/connection.hpp"
#include "util/duration.hpp"

#include <fmt/format.h>

namespace isync::app {
namespace net = boost::asio;

net::awaitable<std::vector<pair_check>> check_pairs_online(net::any_io_executor executor, net::ssl::context& tls,
                                                           sync::engine_settings settings, config::secret token,
                                                           std::int64_t now_ms) {
    std::vector<pair_check> out;
    http::connection conn(executor, tls, settings.connection);
    const std::int64_t from = now_ms - settings.sync.initial_lookback.count();
    const std::int64_t to = now_ms - settings.sync.settle.count();
    for (const auto& pair : settings.sync.pairs) {
        pair_check c{pair, false, std::nullopt, {}};
        const api::incidents_query query{pair, from, to, 0, 1};
        auto res = co_await conn.get(api::incidents_target(settings.connection.endpoint, query), token);
        if (!res) {
            c.verdict = res.error().message;  // names the step: resolving, connecting, TLS handshake, reading
        } else if (res->status == 401 || res->status == 403) {
            c.verdict = fmt::format(
                "HTTP {}: the token was refused (check that it is current and may read this "
                "appId's incidents)",
                res->status);
        } else if (res->status != 200) {
            c.verdict =
                api::classify_response(res->status, res->body, res->retry_after, now_ms, settings.retry.max_delay)
                    .message;
        } else if (auto page = api::parse_page(res->body, api::parse_mode::untyped); !page) {
            c.verdict = "HTTP 200 but the page does not parse: " + page.error().message;
        } else {
            c.answered = true;
            c.count = page->count;
            c.verdict = page->count == 0 ? fmt::format(
                                               "ok, but no incidents at all in the last {}: check the appId and tld (a "
                                               "mistyped tld looks like this)",
                                               util::format_duration(settings.sync.initial_lookback))
                                         : fmt::format("ok, {} incident(s) in the last {}", page->count,
                                                       util::format_duration(settings.sync.initial_lookback));
        }
        out.push_back(std::move(c));
    }
    co_await conn.shutdown();
    co_return out;
}

std::string format_online_report(const std::vector<pair_check>& checks, const sync::engine_settings& settings) {
    const auto& ep = settings.connection.endpoint;
    const bool any_answered = std::any_of(checks.begin(), checks.end(), [](const auto& c) { return c.answered; });
    std::string out =
        fmt::format("api {}:{}: {}\n", ep.host, ep.port, any_answered ? "DNS, TCP and TLS ok" : "see each pair below");
    for (const auto& c : checks)
        out += fmt::format("{}/{}: {}{}\n", c.pair.app_id, c.pair.tld, c.answered ? "" : "FAILED: ", c.verdict);
    return out;
}

}  // namespace isync::app
