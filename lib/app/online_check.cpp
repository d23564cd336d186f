#include "app/online_check.hpp"

#include "api/outcome.hpp"
#include "api/page_parser.hpp"
#include "api/request.hpp"
#include "http/connection.hpp"
#include "util/duration.hpp"
#include "util/text.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace isync::app {
namespace net = boost::asio;

namespace {

// A refusal's line for people: the status's meaning or the server's words.
std::string refusal_verdict(const http::response& res, const sync::engine_settings& settings, std::int64_t now_ms,
                            std::string_view refused_means) {
    if (res.status == 401 || res.status == 403)
        return fmt::format("HTTP {}: the token was refused ({})", res.status, refused_means);
    return api::classify_response(res.status, res.body, res.retry_after, now_ms, settings.retry.max_delay).message;
}

net::awaitable<discovery_check> discover(http::connection& conn, const sync::engine_settings& settings,
                                         const config::secret& token, std::int64_t now_ms) {
    discovery_check out;
    auto res = co_await conn.get(api::account_settings_target(settings.connection.endpoint), token);
    if (!res) {
        out.failure = res.error().message;
    } else if (res->status != 200) {
        out.failure = refusal_verdict(*res, settings, now_ms,
                                      "it may read incidents but not account settings: then list the pairs in "
                                      "sync.pairs and set sync.discover: false");
    } else if (auto apps = api::parse_account_settings(res->body); !apps) {
        out.failure = "HTTP 200 but " + apps.error().message;
    } else {
        out.selected = api::discovered_pairs(*apps, settings.sync.include, settings.sync.exclude);
        out.applications = std::move(*apps);
    }
    co_return out;
}

}  // namespace

bool online_report::ok() const {
    if (discovery && !discovery->applications) return false;
    return std::all_of(pairs.begin(), pairs.end(), [](const pair_check& c) { return c.answered; });
}

net::awaitable<online_report> check_online(net::any_io_executor executor, net::ssl::context& tls,
                                           sync::engine_settings settings, config::secret token, std::int64_t now_ms) {
    online_report report;
    auto& out = report.pairs;
    http::connection conn(executor, tls, settings.connection);
    std::vector<config::pair> pairs = settings.sync.pairs;
    if (settings.sync.discover) {
        report.discovery = co_await discover(conn, settings, token, now_ms);
        for (const auto& p : report.discovery->selected)
            if (std::find(pairs.begin(), pairs.end(), p) == pairs.end()) pairs.push_back(p);
    }
    const std::int64_t from = now_ms - settings.sync.initial_lookback.count();
    const std::int64_t to = now_ms - settings.sync.settle.count();
    for (const auto& pair : pairs) {
        pair_check c{pair, false, std::nullopt, {}};
        const api::incidents_query query{pair, from, to, 0, 1};
        auto res = co_await conn.get(api::incidents_target(settings.connection.endpoint, query), token);
        if (!res) {
            c.verdict = res.error().message;  // names the step: resolving, connecting, TLS handshake, reading
        } else if (res->status != 200) {
            c.verdict =
                refusal_verdict(*res, settings, now_ms, "check that it is current and may read this appId's incidents");
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
    co_return report;
}

std::string format_online_report(const online_report& report, const sync::engine_settings& settings) {
    const auto& ep = settings.connection.endpoint;
    const auto& checks = report.pairs;
    const bool any_answered = std::any_of(checks.begin(), checks.end(), [](const auto& c) { return c.answered; }) ||
                              (report.discovery && report.discovery->applications);
    std::string out =
        fmt::format("api {}:{}: {}\n", ep.host, ep.port, any_answered ? "DNS, TCP and TLS ok" : "see each pair below");
    if (const auto& d = report.discovery) {
        if (!d->applications) {
            out += fmt::format("discovery: FAILED: {}\n", d->failure);
        } else {
            out += fmt::format(
                "discovery: {} application(s); {} pair(s) selected{}\n", d->applications->size(), d->selected.size(),
                settings.sync.include.empty() && settings.sync.exclude.empty() ? "" : " by sync.include/sync.exclude");
            for (const auto& app : *d->applications) {
                std::vector<std::string> domains;
                for (const auto& domain : app.domains) {
                    const config::pair p{app.app_id, domain};
                    const bool polled = std::binary_search(d->selected.begin(), d->selected.end(), p);
                    domains.push_back(polled || !app.enabled ? domain : domain + " (excluded)");
                }
                out += fmt::format("  {}{}: {}{}\n", app.app_id, app.name.empty() ? "" : " (" + app.name + ")",
                                   app.enabled ? "" : "disabled, not polled; ",
                                   domains.empty() ? std::string("no domains") : util::join(domains, ", "));
            }
        }
    }
    for (const auto& c : checks)
        out += fmt::format("{}/{}: {}{}\n", c.pair.app_id, c.pair.tld, c.answered ? "" : "FAILED: ", c.verdict);
    return out;
}

}  // namespace isync::app
