#include "sync/fetcher.hpp"

#include "api/outcome.hpp"
#include "api/page_parser.hpp"
#include "api/rate_limit.hpp"
#include "log/logging.hpp"
#include "util/text.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace isync::sync {
namespace net = boost::asio;

namespace {

bool is_json(std::string_view content_type) {
    const auto semi = content_type.find(';');
    std::string_view media = content_type.substr(0, semi);
    while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
    return media == "application/json" || media.ends_with("+json") || media.empty();
}

// One attempt's verdict.
struct attempt_result {
    std::optional<error> failure;  // none: the body was accepted
    bool retryable = true;
    std::optional<std::chrono::milliseconds> wait;  // Retry-After
};

attempt_result judge(result<http::response>& res, fetch_context& ctx, const body_acceptor& accept) {
    if (!res) {
        ++ctx.stats.transport_failures;
        // A refused certificate or a name that does not exist will be the same
        // in a second: fail the poll now, with one clear line (the next poll
        // tries again).
        const errc code = res.error().code;
        const bool retryable = code != errc::cancelled && code != errc::tls_refused && code != errc::no_such_host &&
                               code != errc::proxy_refused;
        return {res.error(), retryable, std::nullopt};
    }
    ++ctx.stats.responses_by_status[res->status];
    // The server's clock only matters for a Retry-After date: no Date parse per page.
    const std::int64_t now_ms = res->retry_after.empty() ? ctx.now_ms() : api::server_now_ms(res->date, ctx.now_ms());
    const auto verdict =
        api::classify_response(res->status, res->body, res->retry_after, now_ms, ctx.backoff.policy().max_delay);
    switch (verdict.kind) {
        case api::outcome_kind::success: {
            if (!is_json(res->content_type))
                return {make_error(errc::parse,
                                   fmt::format("HTTP 200 with Content-Type \"{}\" instead of JSON: \"{}\"",
                                               util::printable(res->content_type, 60), util::printable(res->body, 80))),
                        true, std::nullopt};
            if (auto accepted = accept(std::move(res->body)); !accepted) return {accepted.error(), true, std::nullopt};
            return {std::nullopt, false, std::nullopt};
        }
        case api::outcome_kind::auth:
            return {make_error(errc::auth, verdict.message), false, std::nullopt};
        case api::outcome_kind::bad_request:
            return {make_error(errc::bad_request, verdict.message), false, std::nullopt};
        case api::outcome_kind::rate_limited:
            return {make_error(errc::http_status, verdict.message), true, verdict.retry_after};
        case api::outcome_kind::transient:
            break;
    }
    return {make_error(errc::http_status, verdict.message), true, std::nullopt};
}

}  // namespace

net::awaitable<result<int>> fetch_with_retries(fetch_context ctx, std::string target, body_acceptor accept,
                                               retry_logger on_retry) {
    for (int attempt = 1;; ++attempt) {
        ++ctx.stats.requests;
        spdlog::trace("GET {} (Authorization: Bearer ***), attempt {}", target, attempt);
        auto res = co_await ctx.source.get(target);
        attempt_result verdict = judge(res, ctx, accept);
        if (!verdict.failure) co_return attempt;
        error failure = std::move(*verdict.failure);
        if (!verdict.retryable || ctx.backoff.exhausted(attempt)) {
            if (!verdict.retryable) co_return failure;
            co_return make_error(failure.code, fmt::format("gave up after {} attempts: {}", attempt, failure.message));
        }

        const auto delay = verdict.wait ? *verdict.wait : ctx.backoff.delay(attempt);
        on_retry(attempt, failure, delay);
        ++ctx.stats.retries;
        net::steady_timer timer(co_await net::this_coro::executor, delay);
        auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        if (ec) co_return make_error(errc::cancelled, "cancelled while waiting to retry");
    }
}

net::awaitable<result<fetched_page>> fetch_page_or_body(fetch_context ctx, api::incidents_query query, bool parse) {
    std::optional<fetched_page> got;
    const api::parse_mode mode = ctx.mode;
    auto accept = [&got, parse, mode](std::string body) -> result<void> {
        if (!parse) {
            got.emplace(std::move(body));
            return {};
        }
        auto page = api::parse_page(body, mode);
        if (!page) return page.error();
        got.emplace(std::move(*page));
        return {};
    };
    auto log_retry = [&ctx, &query](int attempt, const error& failure, std::chrono::milliseconds delay) {
        const log::scoped_fields fields(
            {log::scoped_fields::text("pair", query.pair.app_id + "/" + query.pair.tld),
             log::scoped_fields::number("slice_from", query.from_ms),
             log::scoped_fields::number("slice_to", query.to_ms), log::scoped_fields::number("skip", query.skip),
             log::scoped_fields::number("attempt", attempt), log::scoped_fields::text("status", "retrying"),
             log::scoped_fields::text("error", failure.message)});
        spdlog::warn("{}/{} skip={}: attempt {} of {} failed: {}; retrying in {} ms", query.pair.app_id, query.pair.tld,
                     query.skip, attempt, ctx.backoff.policy().max_attempts, failure.message, delay.count());
    };
    auto attempts = co_await fetch_with_retries(ctx, api::incidents_target(ctx.endpoint, query), accept, log_retry);
    if (!attempts) {
        if (attempts.error().code != errc::cancelled) ++ctx.stats.fetches_failed;
        co_return attempts.error();
    }
    ++(*attempts == 1 ? ctx.stats.fetches_ok : ctx.stats.fetches_retried);
    co_return std::move(*got);
}

}  // namespace isync::sync
