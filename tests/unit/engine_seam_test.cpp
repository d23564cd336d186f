// The engine through its I/O seam (sync/page_source.hpp): a scripted source
// instead of sockets, a real SQLite file, a fixed clock. Retries, giving up,
// the no-retry path of a refused token, planning slices by count and the
// concurrent walk fed pages out of order with the account changing between
// requests, all without a socket.
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "support/scripted_source.hpp"
#include "support/test_support.hpp"
#include "sync/engine.hpp"

#include <SQLiteCpp/Statement.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>

#include <set>

using namespace std::chrono_literals;
using test_support::fake_account;
using test_support::scripted_source;

namespace {

constexpr std::int64_t now_ms = 1'700'000'000'000;
constexpr std::int64_t hour = 3'600'000;

struct engine_run {
    bool all_ok = false;
    isync::sync::sync_stats stats;
    std::shared_ptr<scripted_source> source;
};

class EngineSeam : public ::testing::Test {
protected:
    void SetUp() override {
        fresh_database();
        settings_.sync.pairs = {{account_.app_id, account_.tld}};
        settings_.sync.initial_lookback = 24h;
        settings_.sync.settle = 0ms;
        settings_.sync.overlap = 15min;
        settings_.sync.max_window = 31 * 24h;
        settings_.sync.slice_incidents = 5000;
        settings_.retry.max_attempts = 3;
        settings_.retry.base_delay = 0ms;  // retries without a real wait
        settings_.retry.max_delay = 0ms;
        settings_.page_size = 50;
        settings_.limits = {.initial = 8, .min = 1, .max = 8};
    }

    // An empty database in a new file.
    void fresh_database() {
        store_.reset();
        db_.reset();
        const std::string path = dir_.file(fmt::format("incidents-{}.db", ++databases_));
        auto db = isync::store::open_database({path, 5000ms, false});
        ASSERT_TRUE(db) << db.error().message;
        db_ = std::move(*db);
        store_ = std::make_unique<isync::store::incident_store>(*db_, path);
    }

    // `n` incidents spread evenly over the last day.
    void fill(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            account_.add(fmt::format("{:024x}", i + 1), now_ms - 1 - static_cast<std::int64_t>(i) * (24 * hour - 2) /
                                                                          static_cast<std::int64_t>(n));
    }

    engine_run run(scripted_source::responder respond, std::size_t out_of_order = 0) {
        boost::asio::io_context ioc(1);
        boost::asio::ssl::context unused(boost::asio::ssl::context::tls_client);
        engine_run out;
        out.source = std::make_shared<scripted_source>(ioc.get_executor(), std::move(respond));
        out.source->arrive_out_of_order(out_of_order);
        const isync::sync::clock_source clock{[] { return now_ms; }, [] { return 0.5; }};
        auto source = out.source;
        {
            isync::sync::engine engine(ioc.get_executor(), unused, *store_, settings_, "token", clock,
                                       [source](const auto&, const auto&) { return source; });
            boost::asio::co_spawn(ioc, engine.run_once(), [&](std::exception_ptr e, bool ok) {
                if (e) std::rethrow_exception(e);
                out.all_ok = ok;
            });
            ioc.run();
            out.stats = engine.stats();
        }
        return out;
    }

    scripted_source::responder serve() {
        return [this](const std::string& target, std::size_t) -> isync::result<isync::http::response> {
            return account_.answer(test_support::parse_target(target));
        };
    }

    std::set<std::string> stored_ids() {
        std::set<std::string> ids;
        SQLite::Statement st(*db_, "SELECT id FROM incidents");
        while (st.executeStep()) ids.insert(st.getColumn(0).getString());
        return ids;
    }
    std::optional<std::int64_t> watermark() {
        SQLite::Statement st(*db_, "SELECT watermark_ms FROM sync_state");
        if (!st.executeStep() || st.getColumn(0).isNull()) return std::nullopt;
        return st.getColumn(0).getInt64();
    }
    std::int64_t runs(const char* status) {
        SQLite::Statement st(*db_, "SELECT COUNT(*) FROM sync_runs WHERE status = ?");
        st.bind(1, status);
        st.executeStep();
        return st.getColumn(0).getInt64();
    }

    isync::test::temp_dir dir_;
    int databases_ = 0;
    std::unique_ptr<SQLite::Database> db_;
    std::unique_ptr<isync::store::incident_store> store_;
    isync::sync::engine_settings settings_;
    fake_account account_;
};

std::set<std::string> ids_of(const fake_account& a) {
    std::set<std::string> ids;
    for (const auto& i : a.items) ids.insert(i.id);
    return ids;
}

}  // namespace

TEST_F(EngineSeam, PagesArrivingOutOfOrderLandEveryIncidentOnceWithTheFewestRequests) {
    fill(1000);
    const auto r = run(serve(), /*out_of_order=*/8);
    ASSERT_TRUE(r.all_ok);
    EXPECT_EQ(stored_ids(), ids_of(account_));
    EXPECT_EQ(watermark(), now_ms);
    // One slice: the first page, then ceil((1000 - 50) / 48) pages fetched
    // ahead at the offsets a still walk takes (pages overlap by 2 ids).
    EXPECT_EQ(r.source->targets.size(), 1u + (1000 - 50 + 47) / 48);
    EXPECT_GT(r.source->max_in_flight, 1u);  // fetched concurrently
}

TEST_F(EngineSeam, AWindowWithFewIncidentsCostsOneRequest) {
    fill(20);
    const auto r = run(serve());
    ASSERT_TRUE(r.all_ok);
    EXPECT_EQ(r.source->targets.size(), 1u);  // the whole day in one request, not one per max_window
    EXPECT_EQ(stored_ids().size(), 20u);
}

TEST_F(EngineSeam, ABigWindowIsSplitByCountAndEachSliceCommitsOnItsOwn) {
    settings_.sync.slice_incidents = 400;
    fill(1000);
    const auto r = run(serve(), 4);
    ASSERT_TRUE(r.all_ok);
    EXPECT_EQ(stored_ids(), ids_of(account_));
    EXPECT_EQ(runs("ok"), 3);  // ceil(1000 / 400) parts of an evenly spread day
    // Requests: one probe of the whole day (its count said split) plus each
    // slice's pages: within 10% of incidents / take plus one per window.
    const double minimum = 1000.0 / 50 + 3;
    EXPECT_LE(static_cast<double>(r.source->targets.size()), 1.1 * minimum + 1) << r.source->targets.size();
}

// Between requests, incidents leave the front of the order and new ones
// arrive: the id-anchored walk still reads every incident that stayed in the
// window, whatever order the pages come back in.
TEST_F(EngineSeam, DeparturesAndArrivalsBetweenPagesAreStillCaught) {
    fill(600);
    std::set<std::string> left;
    int added = 0;
    const auto r = run(
        [&](const std::string& target, std::size_t n) -> isync::result<isync::http::response> {
            auto answer = account_.answer(test_support::parse_target(target));
            if (n % 2 == 0 && account_.items.size() > 10) {
                left.insert(account_.items[1].id);
                account_.remove(account_.items[1].id);  // a departure near the front: the rest shift up
            }
            if (n % 5 == 0) account_.add(fmt::format("{:024x}", 0xa0000 + ++added), now_ms - 10);  // an arrival
            return answer;
        },
        6);
    std::set<std::string> stayed = ids_of(account_);
    const auto stored = stored_ids();
    for (const auto& id : stayed) {
        if (id.starts_with("0000000000000000000a")) continue;  // arrived mid-walk: the next poll's overlap
        EXPECT_TRUE(stored.contains(id)) << "missed " << id;
    }
    EXPECT_TRUE(r.all_ok);
    EXPECT_GT(r.stats.drift_corrections, 0u);
}

// A network error injected at each request in turn: retried, the same result.
TEST_F(EngineSeam, ATransportErrorAtAnyRequestIsRetriedToTheSameResult) {
    fill(300);
    const std::size_t requests = run(serve()).source->targets.size();
    for (std::size_t k = 1; k <= requests; ++k) {
        SCOPED_TRACE(k);
        fresh_database();
        const auto r = run([&](const std::string& target, std::size_t n) -> isync::result<isync::http::response> {
            if (n == k) return isync::make_error(isync::errc::transport, "injected reset");
            return account_.answer(test_support::parse_target(target));
        });
        ASSERT_TRUE(r.all_ok);
        EXPECT_EQ(stored_ids(), ids_of(account_));
        EXPECT_EQ(r.stats.retries, 1u);
    }
}

TEST_F(EngineSeam, GivingUpKeepsTheWatermarkAndRecordsTheFailure) {
    fill(300);
    const auto r = run([](const std::string&, std::size_t) -> isync::result<isync::http::response> {
        return isync::make_error(isync::errc::timeout, "injected timeout");
    });
    EXPECT_FALSE(r.all_ok);
    EXPECT_EQ(r.source->targets.size(), 3u);  // retry.max_attempts, then give up
    EXPECT_EQ(watermark(), std::nullopt);
    EXPECT_EQ(runs("failed"), 1);
    EXPECT_TRUE(stored_ids().empty());
}

TEST_F(EngineSeam, ARefusedTokenIsNotRetried) {
    fill(300);
    const auto r = run([](const std::string&, std::size_t) -> isync::result<isync::http::response> {
        isync::http::response res;
        res.status = 401;
        res.body = R"({"message":"Unauthorized"})";
        return res;
    });
    EXPECT_FALSE(r.all_ok);
    EXPECT_EQ(r.source->targets.size(), 1u);
    SQLite::Statement st(*db_, "SELECT auth_failing FROM sync_state");
    ASSERT_TRUE(st.executeStep());
    EXPECT_EQ(st.getColumn(0).getInt(), 1);
}

// A failure half-way through a slice's pages: the pages before it may be
// written, but the watermark stays where it was.
TEST_F(EngineSeam, AFailureMidSliceNeverMovesTheWatermark) {
    fill(1000);
    settings_.retry.max_attempts = 1;
    const auto r = run(
        [&](const std::string& target, std::size_t n) -> isync::result<isync::http::response> {
            if (n == 9) return isync::make_error(isync::errc::transport, "injected reset");
            return account_.answer(test_support::parse_target(target));
        },
        8);
    EXPECT_FALSE(r.all_ok);
    EXPECT_EQ(watermark(), std::nullopt);
    EXPECT_EQ(runs("ok"), 0);
}
