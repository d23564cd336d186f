// The engine through its I/O seam (sync/page_source.hpp): a scripted source
// instead of sockets, a real SQLite file, a fixed clock. Retries, giving up,
// the no-retry path of a refused token, planning slices by count, the
// concurrent walk fed pages out of order with the account changing between
// requests, a commit that fails, a stop while a page is in the store and a
// reload mid-poll, all without a socket. Where a test must act at a moment
// (the writer inside the store, a given request), the store's step hook or
// the responder acts then, never a sleep.
#include "store/database.hpp"
#include "store/incident_store.hpp"
#include "support/scripted_source.hpp"
#include "support/test_support.hpp"
#include "sync/engine.hpp"

#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <stdexcept>

using namespace std::chrono_literals;
using test_support::fake_account;
using test_support::scripted_source;

namespace {

constexpr std::int64_t now_ms = 1'700'000'000'000;
constexpr std::int64_t hour = 3'600'000;

struct engine_run {
    bool finished = false;  // the main task returned and the writer drained
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
            account_.add(fmt::format("{:024x}", i + 1),
                         now_ms - 1 - static_cast<std::int64_t>(i) * (24 * hour - 2) / static_cast<std::int64_t>(n));
    }

    using main_task = std::function<boost::asio::awaitable<bool>(isync::sync::engine&)>;

    // One engine over the database, as the daemon's main task drives it:
    // `body` (run_once() unless given), then drain(). Every snapshot's page
    // source comes from `make_source`. Meanwhile ioc_ and engine_ point at the
    // loop and the engine, so that a hook or a responder can act on them as
    // the daemon's signal handler does (posting to the loop).
    engine_run run_engine(isync::sync::source_factory make_source, main_task body = {}) {
        ioc_ = std::make_unique<boost::asio::io_context>(1);
        boost::asio::ssl::context unused(boost::asio::ssl::context::tls_client);
        engine_run out;
        const isync::sync::clock_source clock{[this] { return clock_ms_; }, [] { return 0.5; }};
        if (!body) body = [](isync::sync::engine& e) { return e.run_once(); };
        {
            isync::sync::engine engine(ioc_->get_executor(), unused, engine_store_ ? *engine_store_ : *store_,
                                       settings_, isync::config::secret("token"), clock, std::move(make_source));
            engine_ = &engine;
            // Parameters, not captures: the frame outlives this lambda expression.
            auto main = [](isync::sync::engine* e, main_task b, engine_run* o) -> boost::asio::awaitable<void> {
                o->all_ok = co_await b(*e);
                co_await e->drain();
                o->finished = true;
            };
            boost::asio::co_spawn(*ioc_, main(&engine, body, &out), [](std::exception_ptr e) {
                if (e) std::rethrow_exception(e);
            });
            // A bound, not a synchronisation: a run that never ends fails the
            // test (finished stays false) instead of hanging it.
            ioc_->run_for(run_bound_);
            out.stats = engine.stats();
            engine_ = nullptr;
        }
        ioc_.reset();
        return out;
    }

    // run_engine over one scripted source for every snapshot (`setup` may
    // configure it further).
    engine_run run(scripted_source::responder respond, std::size_t out_of_order = 0,
                   std::function<void(scripted_source&)> setup = {}) {
        std::shared_ptr<scripted_source> source;
        auto r = run_engine([&](const auto&, const auto&) {
            if (!source) {
                source = std::make_shared<scripted_source>(ioc_->get_executor(), respond);
                source->arrive_out_of_order(out_of_order);
                if (setup) setup(*source);
            }
            return source;
        });
        r.source = source;
        return r;
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

    std::int64_t count_incidents() { return db_->execAndGet("SELECT COUNT(*) FROM incidents").getInt64(); }

    isync::test::temp_dir dir_;
    int databases_ = 0;
    std::int64_t clock_ms_ = now_ms;  // the engine's wall clock: fixed unless a test moves it
    std::chrono::seconds run_bound_{60};
    std::unique_ptr<boost::asio::io_context> ioc_;  // while run_engine runs
    isync::sync::engine* engine_ = nullptr;         // while run_engine runs
    std::unique_ptr<SQLite::Database> db_;
    std::unique_ptr<isync::store::incident_store> store_;
    isync::store::sync_store* engine_store_ = nullptr;  // what the engine writes to, when not store_
    isync::sync::engine_settings settings_;
    fake_account account_;
};

// store_ as a database shared by several daemons (PostgreSQL's leases): every
// claim is granted and every lease renewed; the rest is store_'s.
class sharing_store final : public isync::store::sync_store {
public:
    explicit sharing_store(isync::store::sync_store& inner) : inner_(inner) {}
    int claims = 0;

    bool shares_work() const override { return true; }
    std::chrono::milliseconds lease_span() const override { return 30s; }
    isync::result<bool> claim_pair(const isync::config::pair&, std::size_t) override {
        ++claims;
        return true;
    }
    isync::result<void> begin() override { return inner_.begin(); }
    isync::result<isync::store::upsert_counts> write_page(
        std::span<const isync::model::incident> incidents, std::int64_t now, const isync::store::slice_report* finish,
        std::span<const isync::model::unknown_field> unknown) override {
        return inner_.write_page(incidents, now, finish, unknown);
    }
    isync::result<void> commit() override { return inner_.commit(); }
    void rollback() noexcept override { inner_.rollback(); }
    bool in_transaction() const override { return inner_.in_transaction(); }
    isync::result<std::optional<std::int64_t>> stored_content_hash(const std::string& id) override {
        return inner_.stored_content_hash(id);
    }
    isync::result<void> record_failure(const isync::store::slice_report& report, std::string_view error_text,
                                       std::int64_t now, bool auth_failure) override {
        return inner_.record_failure(report, error_text, now, auth_failure);
    }
    isync::result<std::optional<std::int64_t>> watermark(const isync::config::pair& pair) override {
        return inner_.watermark(pair);
    }
    isync::result<std::vector<isync::store::stored_pair_state>> sync_states() override { return inner_.sync_states(); }
    void on_idle() override { inner_.on_idle(); }
    void interrupt_waits() noexcept override { inner_.interrupt_waits(); }

private:
    isync::store::sync_store& inner_;
};

// A query's window, as the scripted source saw it.
struct window {
    std::int64_t from, to;
    bool operator==(const window&) const = default;
};
void PrintTo(const window& w, std::ostream* os) { *os << "[" << w.from << ", " << w.to << ")"; }

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

// A distant API, played without a clock: the source holds every request and
// answers the oldest only while 8 are held (the pair's pages ahead), when it
// is a slice's first page (sent alone), or once the last page of its window
// is among those held (the tail). A walk that fetched pages in batches, all
// of a batch before the next, would wait for a whole batch that never comes.
class EngineSeamDistant : public EngineSeam {
protected:
    engine_run run_distant() {
        run_bound_ = 20s;  // a walk that stalls fails here, not in an hour
        return run(serve(), 0, [this](scripted_source& source) {
            source.report_average_rtt(100ms);
            source.hold([this](const std::vector<std::string>& held) {
                const auto oldest = test_support::parse_target(held.front());
                if (held.size() >= 8 || oldest.skip == 0) return true;
                const auto count = window_count(oldest.from, oldest.to);
                return std::any_of(held.begin(), held.end(), [&](const std::string& t) {
                    const auto q = test_support::parse_target(t);
                    return q.from == oldest.from && q.to == oldest.to && q.skip + q.take >= count;
                });
            });
        });
    }
    std::int64_t window_count(std::int64_t from, std::int64_t to) const {
        return std::count_if(account_.items.begin(), account_.items.end(),
                             [&](const auto& i) { return i.last_seen_ms >= from && i.last_seen_ms < to; });
    }
};

TEST_F(EngineSeamDistant, APairKeepsEightPagesInFlightAsEachArrives) {
    fill(1000);  // one slice: its first page, then 20 more
    const auto r = run_distant();
    ASSERT_TRUE(r.finished) << "the walk stalled waiting for pages it had not asked for";
    ASSERT_TRUE(r.all_ok);
    EXPECT_EQ(stored_ids(), ids_of(account_));
    const auto& sent = r.source->in_flight_at_send;
    ASSERT_EQ(sent.size(), 1u + (1000 - 50 + 47) / 48);
    // The first page alone, then 8 at once; from then on each page taken is
    // replaced at once: every later request goes out with 7 others in flight.
    EXPECT_EQ(sent[0], 1u);
    for (std::size_t i = 9; i < sent.size(); ++i) EXPECT_EQ(sent[i], 8u) << "request " << i + 1;
    EXPECT_EQ(r.source->max_in_flight, 8u);
}

TEST_F(EngineSeamDistant, TheNextSlicesFirstPageGoesOutWhileTheSliceBeforeIsStillInFlight) {
    settings_.sync.slice_incidents = 400;
    fill(1000);  // the probe of the day, then 3 slices of about 333
    const auto r = run_distant();
    ASSERT_TRUE(r.finished);
    ASSERT_TRUE(r.all_ok);
    EXPECT_EQ(stored_ids(), ids_of(account_));
    EXPECT_EQ(runs("ok"), 3);
    // Each slice's first page, as sent: after the probe and the first slice's
    // own, the walk of the slice before asked for it while its own last pages
    // were still out.
    std::vector<std::size_t> firsts;
    for (std::size_t i = 0; i < r.source->targets.size(); ++i)
        if (test_support::parse_target(r.source->targets[i]).skip == 0) firsts.push_back(i);
    ASSERT_EQ(firsts.size(), 4u);
    EXPECT_EQ(r.source->in_flight_at_send[firsts[0]], 1u);
    EXPECT_EQ(r.source->in_flight_at_send[firsts[1]], 1u);
    EXPECT_GT(r.source->in_flight_at_send[firsts[2]], 1u);
    EXPECT_GT(r.source->in_flight_at_send[firsts[3]], 1u);
    EXPECT_LE(r.source->max_in_flight, 8u);  // the pair's pages ahead include it
}

// Sharing a database: a daemon whose clock shows its lease may have lapsed
// (stopped or cut off past database.lease_ttl since its claim) sends no more
// requests for the pair, and its poll fails without moving the watermark.
TEST_F(EngineSeam, NoRequestForAPairWhoseLeaseMayHaveLapsed) {
    fill(1000);
    sharing_store shared(*store_);
    engine_store_ = &shared;
    const auto r = run([this](const std::string& target, std::size_t n) -> isync::result<isync::http::response> {
        if (n == 1) clock_ms_ += 31'000;  // frozen past the 30 s lease while the first page was out
        return account_.answer(test_support::parse_target(target));
    });
    EXPECT_TRUE(r.finished);
    EXPECT_FALSE(r.all_ok);
    EXPECT_EQ(shared.claims, 1);
    EXPECT_EQ(r.source->targets.size(), 1u) << "requests went out for a pair whose lease may have lapsed";
    EXPECT_EQ(watermark(), std::nullopt);
    EXPECT_EQ(runs("failed"), 1);
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

// Pages fetched ahead of the walk wait as bytes and are parsed when the walk
// takes them: a broken one is then fetched again, like a broken first page.
TEST_F(EngineSeam, ABrokenBodyAtAnyRequestIsFetchedAgainToTheSameResult) {
    fill(300);
    const std::size_t requests = run(serve()).source->targets.size();
    ASSERT_GE(requests, 6u);  // a first page and pages fetched ahead
    for (std::size_t k = 1; k <= requests; ++k) {
        SCOPED_TRACE(k);
        fresh_database();
        std::string broken_target;
        const auto r = run([&](const std::string& target, std::size_t n) -> isync::result<isync::http::response> {
            isync::http::response answer = account_.answer(test_support::parse_target(target));
            if (n == k) {
                answer.body.resize(answer.body.size() / 2);  // cut mid-page: not JSON
                broken_target = target;
            }
            return answer;
        });
        ASSERT_TRUE(r.all_ok);
        EXPECT_EQ(stored_ids(), ids_of(account_));
        EXPECT_EQ(r.stats.retries, 1u);
        EXPECT_EQ(std::count(r.source->targets.begin(), r.source->targets.end(), broken_target), 2);
        EXPECT_EQ(runs("failed"), 0);
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

// The commit of a poll's pages fails (a full disk, say): the store rolls the
// whole transaction back. The poll must say so in sync_runs, leave the
// watermark where it was, and the next poll must land everything, once.
// One page: the failure reaches the engine through the final flush (the page
// itself was written). Three slices of pages: through the flush or through
// the next page refused, whichever the writer's idle commit meets first; the
// outcome must be the same.
struct failed_commit_case {
    std::size_t incidents;
    std::int64_t slices;  // of a successful poll (slice_incidents 400)
};
void PrintTo(const failed_commit_case& c, std::ostream* os) { *os << c.incidents << " incidents"; }

class EngineSeamFailedCommit : public EngineSeam, public ::testing::WithParamInterface<failed_commit_case> {};

TEST_P(EngineSeamFailedCommit, RecordsAFailedRunKeepsTheWatermarkAndTheNextPollLandsEverythingOnce) {
    settings_.sync.slice_incidents = 400;
    fill(GetParam().incidents);
    std::atomic<int> commits{0};
    // Set before the engine starts its writer thread, cleared after it joined.
    store_->set_step_hook([&](std::string_view step) {
        if (step == "commit" && ++commits == 1) throw std::runtime_error("injected: disk I/O error at commit");
    });
    const auto failed = run(serve(), 8);
    store_->set_step_hook(nullptr);
    ASSERT_TRUE(failed.finished);
    EXPECT_FALSE(failed.all_ok);
    EXPECT_GE(commits.load(), 1);
    EXPECT_EQ(watermark(), std::nullopt);
    EXPECT_TRUE(stored_ids().empty());  // rolled back, every page of it
    EXPECT_EQ(runs("ok"), 0);
    {
        SQLite::Statement st(*db_, "SELECT error FROM sync_runs WHERE status = 'failed'");
        ASSERT_TRUE(st.executeStep());
        EXPECT_TRUE(isync::test::contains(st.getColumn(0).getString(), "injected: disk I/O error at commit"));
        EXPECT_FALSE(st.executeStep()) << "one failed poll, one failed row";
        SQLite::Statement state(*db_, "SELECT last_error FROM sync_state");
        ASSERT_TRUE(state.executeStep());
        EXPECT_TRUE(isync::test::contains(state.getColumn(0).getString(), "injected: disk I/O error at commit"));
    }

    const auto next = run(serve(), 8);
    ASSERT_TRUE(next.finished);
    ASSERT_TRUE(next.all_ok);
    EXPECT_EQ(stored_ids(), ids_of(account_));
    EXPECT_EQ(count_incidents(), static_cast<std::int64_t>(account_.items.size()));
    // Each inserted exactly once, by this poll: nothing of the failed one survived.
    EXPECT_EQ(next.stats.incidents_new, account_.items.size());
    EXPECT_EQ(watermark(), now_ms);
    EXPECT_EQ(runs("ok"), GetParam().slices);
    EXPECT_EQ(runs("failed"), 1);
}

INSTANTIATE_TEST_SUITE_P(EngineSeam, EngineSeamFailedCommit,
                         ::testing::Values(failed_commit_case{20, 1}, failed_commit_case{1000, 3}),
                         [](const auto& info) { return fmt::format("{}Incidents", info.param.incidents); });

// SIGTERM while the writer is inside the store. The step hook, on the writer
// thread in the middle of a page of the second slice, has the loop call
// engine::stop() (as the daemon's signal handler does) and goes on only once
// it has; run_once() must then return and drain() finish. What is committed
// must be whole: the watermark at the end of the last slice that completed,
// every incident below it present, above it only whole pages, no sync_runs
// row for the cut slice; and the next run completes the data.
TEST_F(EngineSeam, AStopWhileAPageIsInTheStoreLeavesOnlyWholeSlicesAndTheNextRunCompletesThem) {
    settings_.sync.slice_incidents = 400;
    fill(1000);                           // the probe of the day, then 3 slices of about 333
    std::vector<window> windows;          // as first asked: the probe, then each slice
    std::vector<std::int64_t> page_ends;  // skip + take of every request of the second slice
    std::atomic<bool> in_second_slice{false};
    auto respond = [&](const std::string& target, std::size_t) -> isync::result<isync::http::response> {
        const auto q = test_support::parse_target(target);
        if (std::find(windows.begin(), windows.end(), window{q.from, q.to}) == windows.end())
            windows.push_back({q.from, q.to});
        if (windows.size() == 3 && windows[2] == window{q.from, q.to}) {
            page_ends.push_back(q.skip + q.take);
            // Its first page is requested while the first slice's last pages
            // are still being written (the walk asks for it when it has room
            // to spare); its second page only once they all are.
            if (q.skip > 0) in_second_slice = true;
        }
        return account_.answer(q);
    };
    std::atomic<int> second_slice_incidents{0};
    bool stopped_inside = false;  // loop thread
    store_->set_step_hook([&](std::string_view step) {
        // The 60th incident written after the second slice's walk began: in
        // its second or third page.
        if (step != "incident" || !in_second_slice || ++second_slice_incidents != 60) return;
        std::promise<void> stopped;
        boost::asio::post(*ioc_, [&] {
            engine_->stop();
            stopped_inside = true;
            stopped.set_value();
        });
        stopped.get_future().wait();
    });
    const auto cut = run(respond);
    store_->set_step_hook(nullptr);
    ASSERT_TRUE(stopped_inside);
    ASSERT_TRUE(cut.finished) << "run_once() or drain() did not return after stop()";
    EXPECT_FALSE(cut.all_ok);
    ASSERT_GE(windows.size(), 3u);
    const window first = windows[1], second = windows[2];

    EXPECT_EQ(runs("failed"), 0);  // a stop is not a failure
    std::vector<window> ok_rows;
    std::int64_t first_new = -1;
    {
        SQLite::Statement st(*db_, "SELECT from_ms, to_ms, incidents_new FROM sync_runs WHERE status = 'ok'");
        while (st.executeStep()) {
            ok_rows.push_back({st.getColumn(0).getInt64(), st.getColumn(1).getInt64()});
            first_new = st.getColumn(2).getInt64();
        }
    }
    ASSERT_EQ(ok_rows, std::vector<window>{first});  // the first slice, and only it
    EXPECT_EQ(watermark(), first.to);

    // Below the watermark: every incident, as many as its row says were new.
    auto stored_above = stored_ids();
    std::int64_t in_first = 0;
    std::vector<std::string> second_order;  // the second slice as the API orders it
    for (const auto& i : account_.items) {
        if (i.last_seen_ms < first.to) {
            in_first += i.last_seen_ms >= first.from;
            EXPECT_EQ(stored_above.erase(i.id), 1u) << "below the watermark but missing: " << i.id;
        } else if (i.last_seen_ms < second.to) {
            second_order.push_back(i.id);
        }
    }
    EXPECT_EQ(first_new, in_first);
    // Above it: the second slice's first pages, each whole (the one cut by
    // the stop included), never its last page, nothing of the third slice.
    const std::size_t above = stored_above.size();
    EXPECT_GE(above, 60u);
    ASSERT_LT(above, second_order.size());
    EXPECT_TRUE(std::find(page_ends.begin(), page_ends.end(), static_cast<std::int64_t>(above)) != page_ends.end())
        << above << " incidents above the watermark: not a page boundary";
    EXPECT_EQ(stored_above,
              std::set<std::string>(second_order.begin(), second_order.begin() + static_cast<std::ptrdiff_t>(above)))
        << "above the watermark: not the first " << above << " incidents of the second slice";

    const auto resumed = run(serve());
    ASSERT_TRUE(resumed.finished);
    ASSERT_TRUE(resumed.all_ok);
    EXPECT_EQ(stored_ids(), ids_of(account_));
    EXPECT_EQ(watermark(), now_ms);
    // From the watermark on, not from the start of the day.
    EXPECT_EQ(test_support::parse_target(resumed.source->targets.front()).from,
              first.to - std::chrono::milliseconds(settings_.sync.overlap).count());
}

// SIGHUP while a poll runs: engine::reconfigure() from the loop, posted when
// the first poll of pair A asks for its third page. That poll must finish on
// the snapshot it started with (page size 50, the source holding the old
// token), the next polls take the new settings (page size 20, the new
// source); an added pair is polled from then on; a pair removed by a second
// reload is not polled again but keeps its data and watermark.
// sync.interval 0 and a clock moved a minute per finished poll: the polls
// follow each other without any real wait.
TEST_F(EngineSeam, AReloadMidPollLeavesThatPollOnItsOwnSettingsAndTheNextPollsTakeTheNewOnes) {
    using isync::config::pair;
    using isync::sync::pair_status;
    fill(1000);  // A's first poll: 21 requests of 50, in two batches
    fake_account b;
    b.app_id = "PXb";
    b.tld = "b.example";
    for (std::int64_t i = 0; i < 100; ++i) b.add(fmt::format("b{:023x}", i + 1), now_ms - 1 - i * 600'000);
    settings_.sync.interval = 0ms;
    const pair a_pair{account_.app_id, account_.tld}, b_pair{b.app_id, b.tld};

    auto reload = settings_;
    reload.page_size = 20;
    reload.sync.pairs = {a_pair, b_pair};
    auto without_a = reload;
    without_a.sync.pairs = {b_pair};

    struct request {
        int generation;  // of the page source, i.e. of the snapshot
        pair p;
        int take;
        int poll;       // of that pair, from 1
        std::size_t n;  // its place among all requests, from 0
    };
    std::vector<request> seen;
    std::map<pair, int> polls_done;
    std::map<pair, std::vector<pair_status>> statuses;
    std::optional<std::size_t> reloaded_at, removed_at;  // seen.size() when applied
    int b_polls_at_removal = 0, polls = 0, generations = 0;
    bool stop_posted = false;

    auto make_source = [&](const isync::sync::engine_settings&, const isync::config::secret&) {
        const int generation = ++generations;
        return std::make_shared<scripted_source>(
            ioc_->get_executor(),
            [&, generation](const std::string& target, std::size_t) -> isync::result<isync::http::response> {
                const auto q = test_support::parse_target(target);
                const pair p{q.app_id, q.tld};
                seen.push_back({generation, p, q.take, polls_done[p] + 1, seen.size()});
                const auto a_requests =
                    std::count_if(seen.begin(), seen.end(), [&](const auto& r) { return r.p == a_pair; });
                if (p == a_pair && a_requests == 3)
                    boost::asio::post(*ioc_, [&] {
                        engine_->reconfigure(reload, isync::config::secret("token-2"));
                        reloaded_at = seen.size();
                    });
                return (p == a_pair ? account_ : b).answer(q);
            });
    };
    auto stop = [&] {
        if (std::exchange(stop_posted, true)) return;
        boost::asio::post(*ioc_, [&] { engine_->stop(); });
    };
    auto body = [&](isync::sync::engine& e) {
        e.on_pair_done([&](const pair& p, pair_status s) {
            statuses[p].push_back(s);
            ++polls_done[p];
            clock_ms_ += 60'000;  // the next poll has a minute more to read
            if (p == a_pair && polls_done[p] == 2)
                boost::asio::post(*ioc_, [&] {
                    engine_->reconfigure(without_a, isync::config::secret("token-3"));
                    removed_at = seen.size();
                    b_polls_at_removal = polls_done[b_pair];
                });
            if (removed_at && p == b_pair && polls_done[p] >= b_polls_at_removal + 2) stop();
            if (++polls > 100) stop();  // a runaway: the checks below say what went wrong
        });
        return [](isync::sync::engine* self) -> boost::asio::awaitable<bool> {
            co_await self->run();
            co_return true;
        }(&e);
    };
    const auto r = run_engine(make_source, body);
    ASSERT_TRUE(r.finished);
    ASSERT_TRUE(reloaded_at && removed_at);
    auto of = [&](const pair& p, std::optional<int> poll = {}) {
        std::vector<request> out;
        for (const auto& q : seen)
            if (q.p == p && (!poll || q.poll == *poll)) out.push_back(q);
        return out;
    };

    // A's first poll ran on to its end on the old snapshot, also for the
    // pages it asked for after the reload.
    const auto a1 = of(a_pair, 1);
    EXPECT_EQ(a1.size(), 1u + (1000 - 50 + 47) / 48);
    EXPECT_TRUE(std::any_of(a1.begin(), a1.end(), [&](const auto& q) { return q.n >= *reloaded_at; }))
        << "no request of the first poll came after the reload: the test proves nothing";
    for (const auto& q : a1) {
        EXPECT_EQ(q.take, 50) << "request " << q.n;
        EXPECT_EQ(q.generation, 1) << "request " << q.n;
    }
    ASSERT_FALSE(statuses[a_pair].empty());
    EXPECT_EQ(statuses[a_pair].front(), pair_status::ok);
    // Its next poll took the new settings.
    const auto a2 = of(a_pair, 2);
    ASSERT_FALSE(a2.empty());
    for (const auto& q : a2) {
        EXPECT_EQ(q.take, 20) << "request " << q.n;
        EXPECT_EQ(q.generation, 2) << "request " << q.n;
    }
    // The added pair: polled from the reload on, with the new settings.
    const auto bs = of(b_pair);
    ASSERT_FALSE(bs.empty());
    for (const auto& q : bs) {
        EXPECT_GE(q.n, *reloaded_at);
        EXPECT_EQ(q.take, 20) << "request " << q.n;
        EXPECT_GE(q.generation, 2) << "request " << q.n;
    }
    EXPECT_GE(polls_done[b_pair], b_polls_at_removal + 2);
    // The removed pair: no request after the removal; its data stays.
    for (const auto& q : of(a_pair)) EXPECT_LT(q.n, *removed_at) << "A polled after its removal";
    const auto stored = stored_ids();
    for (const auto& i : account_.items) EXPECT_TRUE(stored.contains(i.id)) << i.id;
    for (const auto& i : b.items) EXPECT_TRUE(stored.contains(i.id)) << i.id;
    SQLite::Statement st(*db_, "SELECT watermark_ms FROM sync_state WHERE app_id = ? AND tld = ?");
    st.bind(1, a_pair.app_id);
    st.bind(2, a_pair.tld);
    ASSERT_TRUE(st.executeStep());
    EXPECT_GE(st.getColumn(0).getInt64(), now_ms);
}

// `once` also takes SIGHUP (lib/app/daemon.cpp): a reload during a single
// pass must not turn it into a polling loop that never returns.
// A SIGHUP during `once`: the pass ends with the pairs it began with, polled
// once each (before the fix, reconfigure() took every pair of the pass for a
// new one and started a second, endless poll loop beside it).
TEST_F(EngineSeam, AReloadDuringASinglePassEndsWithThatPass) {
    fill(300);
    settings_.sync.interval = 24h;
    run_bound_ = std::chrono::seconds(5);
    auto reload = settings_;
    reload.page_size = 20;
    const auto r = run([&](const std::string& target, std::size_t n) -> isync::result<isync::http::response> {
        if (n == 2) boost::asio::post(*ioc_, [&] { engine_->reconfigure(reload, isync::config::secret("token-2")); });
        return account_.answer(test_support::parse_target(target));
    });
    EXPECT_TRUE(r.finished) << "run_once() did not return";
    EXPECT_TRUE(r.all_ok);
    EXPECT_EQ(r.source->targets.size(), 1u + (300 - 50 + 47) / 48) << "more than the one pass";
}

// A page deep in a slice refused: with a 4xx (a search backend's bound on
// offsets) the slice is split and the limit learned, so the next big window
// is split before its walk gets there; with a server error that outlived its
// retries the slice is only split. Either way no run fails and every
// incident lands. Refused: any request with skip >= 200.
class EngineSeamDeepOffset : public EngineSeam, public ::testing::WithParamInterface<unsigned> {};

TEST_P(EngineSeamDeepOffset, SplitsTheSliceInsteadOfFailingThePair) {
    const unsigned refusal = GetParam();
    fill(1000);
    std::size_t refused = 0;
    const auto r = run([&](const std::string& target, std::size_t) -> isync::result<isync::http::response> {
        const auto q = test_support::parse_target(target);
        if (q.skip >= 200) {
            ++refused;
            return isync::http::response{
                refusal, R"({"message":"Result window is too large"})", "application/json", "", "", "", ""};
        }
        return account_.answer(q);
    });
    ASSERT_TRUE(r.finished);
    EXPECT_TRUE(r.all_ok);
    EXPECT_EQ(count_incidents(), 1000);
    EXPECT_EQ(watermark(), now_ms);
    EXPECT_EQ(runs("failed"), 0);
    // The first refused offset is 240 (pages step by 48): 1,000 incidents
    // need at least 5 parts of fewer than 240.
    EXPECT_GE(runs("ok"), 5);
    EXPECT_GT(refused, 0u);
    if (refusal == 400) {
        // Learned from the first refusal: after the first batch, no part's
        // walk reaches skip 200 again (a batch fetches up to 16 pages at once).
        EXPECT_LE(refused, 16u);
    }
}

INSTANTIATE_TEST_SUITE_P(EngineSeam, EngineSeamDeepOffset, ::testing::Values(400u, 500u),
                         [](const auto& info) { return "Http" + std::to_string(info.param); });
