// Pair discovery: the engine's members that ask GET /v1/account-settings
// which pairs exist, and start and stop pair loops to match.

#include "log/logging.hpp"
#include "sync/engine.hpp"
#include "sync/fetcher.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

namespace isync::sync {
namespace net = boost::asio;
namespace {

std::string pair_name(const config::pair& p) { return fmt::format("{}/{}", p.app_id, p.tld); }

std::vector<config::pair> selected(const std::optional<std::vector<api::application>>& apps,
                                   const config::sync_config& sync) {
    if (!sync.discover || !apps) return {};
    return api::discovered_pairs(*apps, sync.include, sync.exclude);
}

std::vector<config::pair> minus(const std::vector<config::pair>& a, const std::vector<config::pair>& b) {
    std::vector<config::pair> out;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
    return out;
}

}  // namespace

void engine::select_discovered() { discovered_ = selected(applications_, current_->settings.sync); }

std::vector<config::pair> engine::polled_pairs() const {
    const auto& sync = current_->settings.sync;
    std::vector<config::pair> out = discovered_;
    out.insert(out.end(), sync.pairs.begin(), sync.pairs.end());
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

net::awaitable<engine::discovery_outcome> engine::discover(std::shared_ptr<const snapshot> snap) {
    const auto& sync = snap->settings.sync;
    fetch_context ctx{*snap->source, snap->settings.connection.endpoint, snap->backoff, clock_.now_ms, stats_};
    std::optional<std::vector<api::application>> got;
    auto accept = [&got](std::string body) -> result<void> {
        auto apps = api::parse_account_settings(body);
        if (!apps) return apps.error();
        got = std::move(*apps);
        return {};
    };
    auto log_retry = [&snap](int attempt, const error& failure, std::chrono::milliseconds delay) {
        const log::scoped_fields fields({log::scoped_fields::text("status", "retrying"),
                                         log::scoped_fields::number("attempt", attempt),
                                         log::scoped_fields::text("error", failure.message)});
        spdlog::warn("discovery: attempt {} of {} failed: {}; retrying in {} ms", attempt,
                     snap->backoff.policy().max_attempts, failure.message, delay.count());
    };
    const auto attempts = co_await fetch_with_retries(
        ctx, api::account_settings_target(snap->settings.connection.endpoint), accept, log_retry);
    if (!attempts) {
        const error& e = attempts.error();
        if (e.code == errc::cancelled) co_return discovery_outcome::cancelled;
        ++stats_.discoveries_failed;
        const std::string kept =
            applications_ ? fmt::format("keeping the last known {} pair(s)", discovered_.size())
            : sync.pairs.empty()
                ? std::string("no pairs to poll until it answers")
                : fmt::format("polling only the {} pair(s) of sync.pairs until it answers", sync.pairs.size());
        const std::string advice =
            e.code == errc::auth
                ? " (a token may read incidents but not account settings: then list the pairs in sync.pairs and "
                  "set sync.discover: false)"
                : "";
        const log::scoped_fields fields(
            {log::scoped_fields::text("status", "failed"), log::scoped_fields::text("error", e.message)});
        spdlog::error("discovery: GET /v1/account-settings failed: {}{}; {}", e.message, advice, kept);
        co_return discovery_outcome::failed;
    }
    const auto before = discovered_;
    const bool first = !applications_.has_value();
    applications_ = std::move(got);
    select_discovered();
    const auto& after = discovered_;
    ++stats_.discoveries_ok;
    stats_.last_discovery_ms = clock_.now_ms();
    const auto enabled = std::count_if(applications_->begin(), applications_->end(),
                                       [](const api::application& a) { return a.enabled; });
    if (first || before != after)
        spdlog::info("discovery: {} application(s), {} enabled; {} pair(s) selected{}", applications_->size(), enabled,
                     after.size(), sync.include.empty() && sync.exclude.empty() ? "" : " by sync.include/sync.exclude");
    else
        spdlog::debug("discovery: no change ({} pair(s))", after.size());
    if (!first) {
        for (const auto& p : minus(before, after))
            spdlog::info(
                "discovery: {} is no longer listed (application disabled or removed, domain removed, or "
                "excluded); its data stays",
                pair_name(p));
        for (const auto& p : minus(after, before)) spdlog::info("discovery: {} is new", pair_name(p));
    }
    if (after.empty() && sync.pairs.empty())
        spdlog::warn("discovery: the account lists no enabled application x domain{}; nothing to poll",
                     sync.include.empty() && sync.exclude.empty() ? "" : " that sync.include/sync.exclude select");
    co_return discovery_outcome::ok;
}

net::awaitable<void> engine::discovery_loop() {
    net::steady_timer timer(executor_);
    for (;;) {
        const auto outcome = co_await discover(current_);
        if (outcome == discovery_outcome::cancelled || stopping_) co_return;
        apply_pairs("discovery's list");
        // After a failure, try again sooner: a pair list an hour old is
        // fine, none at all (the first discovery failed) is not.
        const auto& sync = current_->settings.sync;
        timer.expires_after(outcome == discovery_outcome::ok ? sync.discover_interval
                                                             : std::min(sync.discover_interval, sync.interval));
        auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        if (ec || stopping_) co_return;
    }
}

net::awaitable<void> engine::discover_for_single_pass() {
    const auto outcome = co_await discover(current_);
    if (outcome == discovery_outcome::cancelled || stopping_) co_return;
    discovery_failed_ = outcome != discovery_outcome::ok;
    for (const auto& pair : polled_pairs()) spawn_single_poll(pair);
}

void engine::restart_discovery() {
    if (discovery_task_) tasks_.cancel(*discovery_task_);
    discovery_task_.reset();
    if (current_->settings.sync.discover && !stopping_) discovery_task_ = tasks_.spawn("discovery", discovery_loop());
}

void engine::apply_pairs(std::string_view cause) {
    if (!polling_forever_) return;
    const auto pairs = polled_pairs();
    for (auto it = pair_tasks_.begin(); it != pair_tasks_.end();) {
        if (!std::binary_search(pairs.begin(), pairs.end(), it->first)) {
            spdlog::info("{}: removed from {}; stopping its polls (its data stays)", pair_name(it->first), cause);
            tasks_.cancel(it->second);
            last_status_.erase(it->first);
            it = pair_tasks_.erase(it);
        } else {
            ++it;
        }
    }
    if (stopping_) return;
    for (const auto& p : pairs) {
        if (!pair_tasks_.contains(p)) {
            spdlog::info("{}: added to {}; polling", pair_name(p), cause);
            start_pair_loop(p);
        }
    }
}

}  // namespace isync::sync
