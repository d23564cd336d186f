#pragma once
// A scripted page_source for engine tests without sockets, in the style of
// Boost.MySQL's sans-io tests: every request the engine makes reaches a
// responder the test writes (which may fail it, refuse it, or change the
// account first), and answers can be made to arrive out of order. Single
// threaded: it completes on the engine's own io_context.

#include "http/connection.hpp"
#include "sync/page_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace test_support {

// A query's parameters, read back from the request target.
struct seen_query {
    std::string app_id, tld;
    std::int64_t from = 0, to = 0, skip = 0;
    int take = 0;
};

inline std::int64_t query_number(std::string_view target, std::string_view name) {
    const auto at = target.find(std::string(name) + "=");
    if (at == std::string_view::npos) return -1;
    std::int64_t v = 0;
    const auto begin = target.data() + at + name.size() + 1;
    std::from_chars(begin, target.data() + target.size(), v);
    return v;
}

inline std::string query_text(std::string_view target, std::string_view name) {
    const auto at = target.find(std::string(name) + "=");
    if (at == std::string_view::npos) return {};
    const auto begin = at + name.size() + 1;
    return std::string(target.substr(begin, target.find('&', begin) - begin));
}

inline seen_query parse_target(std::string_view target) {
    return {query_text(target, "appId"), query_text(target, "tld"),    query_number(target, "from"),
            query_number(target, "to"),  query_number(target, "skip"), static_cast<int>(query_number(target, "take"))};
}

// An account of one pair: incidents in the API's order (newest last_seen
// first), which the test may change between requests.
struct fake_account {
    struct item {
        std::string id;
        std::int64_t last_seen_ms;
    };
    std::string app_id = "PXa";
    std::string tld = "a.example";
    std::vector<item> items;  // kept newest first

    void add(std::string id, std::int64_t last_seen_ms) {
        items.push_back({std::move(id), last_seen_ms});
        std::stable_sort(items.begin(), items.end(),
                         [](const item& a, const item& b) { return a.last_seen_ms > b.last_seen_ms; });
    }
    void remove(const std::string& id) {
        std::erase_if(items, [&](const item& i) { return i.id == id; });
    }

    // GET /v1/incidents for `q`, as the API answers it.
    isync::http::response answer(const seen_query& q) const {
        std::vector<const item*> in_window;
        for (const auto& i : items)
            if (i.last_seen_ms >= q.from && i.last_seen_ms < q.to) in_window.push_back(&i);
        std::string data;
        for (std::int64_t k = q.skip; k < static_cast<std::int64_t>(in_window.size()) && k < q.skip + q.take; ++k) {
            const auto* i = in_window[static_cast<std::size_t>(k)];
            if (!data.empty()) data += ',';
            data += fmt::format(R"({{"id":"{}","app_id":"{}","host_domain":"{}","risk_level":"low",)"
                                R"("last_seen":"{}"}})",
                                i->id, app_id, tld, iso(i->last_seen_ms));
        }
        isync::http::response r;
        r.status = 200;
        r.content_type = "application/json";
        r.body = fmt::format(R"({{"paging":{{"count":{}}},"data":[{}]}})", in_window.size(), data);
        return r;
    }

    static std::string iso(std::int64_t ms) {
        const std::time_t s = static_cast<std::time_t>(ms / 1000);
        std::tm tm{};
        gmtime_r(&s, &tm);
        return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                           tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
    }
};

class scripted_source final : public isync::sync::page_source {
public:
    // `respond(target, n)` answers request number n (1-based).
    using responder = std::function<isync::result<isync::http::response>(const std::string& target, std::size_t n)>;

    scripted_source(boost::asio::any_io_executor executor, responder respond)
        : executor_(std::move(executor)), respond_(std::move(respond)) {}

    // Answers of requests sent together arrive in reverse order: request n
    // waits (out_of_order - n % out_of_order) turns of the event loop, so of
    // a batch of that many, the last sent is answered first. 0: in order.
    void arrive_out_of_order(std::size_t batch) { out_of_order_ = batch; }

    // A network whose answers come only when the test's rule says: every
    // request is held, and whenever one is sent or answered the oldest held
    // is answered while `release_oldest(targets held, oldest first)` is true.
    // No clock: what the engine does between answers is all it can do.
    using release_rule = std::function<bool(const std::vector<std::string>& held)>;
    void hold(release_rule release_oldest) { release_oldest_ = std::move(release_oldest); }

    // What stats() says the round trips average (0: a near API).
    void report_average_rtt(std::chrono::milliseconds rtt) { average_rtt_ = rtt; }
    isync::sync::source_stats stats() const override {
        isync::sync::source_stats s;
        s.in_flight = static_cast<int>(in_flight_);
        s.peak_in_flight = static_cast<int>(max_in_flight);
        s.average_rtt = average_rtt_;
        return s;
    }

    boost::asio::awaitable<isync::result<isync::http::response>> get(std::string target) override {
        const std::size_t n = ++requests_;
        targets.push_back(target);
        ++in_flight_;
        in_flight_at_send.push_back(in_flight_);
        max_in_flight = std::max(max_in_flight, in_flight_);
        if (release_oldest_) {
            auto answered = std::make_shared<released_signal>(executor_, 1);
            held_.push_back({target, answered});
            release_what_the_rule_says();
            (void)co_await answered->async_receive(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
        if (out_of_order_ > 0)
            for (std::size_t turn = 0; turn < out_of_order_ - n % out_of_order_; ++turn)
                co_await boost::asio::post(executor_, boost::asio::use_awaitable);
        --in_flight_;
        if (release_oldest_) release_what_the_rule_says();
        co_return respond_(target, n);
    }

    std::vector<std::string> targets;            // every request, in the order sent
    std::vector<std::size_t> in_flight_at_send;  // for each request: in flight once sent, itself included
    std::size_t max_in_flight = 0;

private:
    using released_signal = boost::asio::experimental::channel<void(boost::system::error_code)>;
    struct held_request {
        std::string target;
        std::shared_ptr<released_signal> answered;
    };
    void release_what_the_rule_says() {
        for (;;) {
            std::vector<std::string> held;
            for (const auto& h : held_) held.push_back(h.target);
            if (held.empty() || !release_oldest_(held)) return;
            held_.front().answered->try_send(boost::system::error_code{});
            held_.erase(held_.begin());
        }
    }

    boost::asio::any_io_executor executor_;
    responder respond_;
    std::size_t out_of_order_ = 0;
    std::size_t requests_ = 0;
    std::size_t in_flight_ = 0;
    release_rule release_oldest_;
    std::vector<held_request> held_;
    std::chrono::milliseconds average_rtt_{0};
};

}  // namespace test_support
