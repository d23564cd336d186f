// The single database writer (lib/sync/store_writer.hpp) over a real SQLite
// file. The event loop runs on the test thread; coroutines submit pages and
// await tickets and flushes. The writer's grouping is made deterministic by
// blocking its thread with a posted task until every page is queued (a gate the
// test opens), never by sleeping.

#include "sync/store_writer.hpp"

#include "api/page_parser.hpp"
#include "fake_api/dataset.hpp"
#include "store/database.hpp"
#include "store/incident_store.hpp"

#include "support/db_reader.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;

using isync::errc;
using isync::result;
using isync::api::parse_mode;
using isync::store::incident_store;
using isync::store::open_database;
using isync::store::slice_report;
using isync::store::upsert_counts;
using isync::sync::store_writer;
using isync::sync::writer_limits;
using isync::test::contains;
using isync::test::temp_dir;
using ticket_ptr = std::shared_ptr<store_writer::write_ticket>;

namespace {

constexpr std::int64_t t1 = 1674400000000;  // 2023-01-22T15:06:40Z
constexpr std::int64_t t2 = t1 + 60'000;

const isync::config::pair pair_a{"PXsim000", "site000.example"};

// Grouping tests must not depend on how fast the writer thread runs: with a
// batch age of an hour, only the queue and the incident limit decide commits.
constexpr writer_limits no_age_limit{.max_batch_incidents = writer_limits{}.max_batch_incidents,
                                     .max_batch_age = std::chrono::hours(1)};

// Holds the writer thread inside a posted task until the test opens it.
class gate {
public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        opened_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mutex_);
        opened_.wait(lock, [this] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable opened_;
    bool open_ = false;
};

// Declared after the writer: opens the gate before the writer's destructor
// joins its thread, so a failed expectation cannot leave the test hanging.
struct open_on_exit {
    gate& g;
    ~open_on_exit() { g.open(); }
};

std::string text(const upsert_counts& c) {
    return "seen " + std::to_string(c.seen) + ", inserted " + std::to_string(c.inserted) + ", changed " +
           std::to_string(c.changed) + ", unchanged " + std::to_string(c.unchanged);
}

// What a ticket (or flush) ended with, kept for checks outside the coroutine.
struct outcome {
    bool delivered = false;  // false: the awaiting coroutine got nullopt
    bool ok = false;
    std::string counts;  // text(counts) when ok
    errc code{};
    std::string message;  // when not ok
};

outcome settled(const std::optional<result<upsert_counts>>& r) {
    outcome o;
    if (!r) return o;
    o.delivered = true;
    o.ok = r->has_value();
    if (o.ok)
        o.counts = text(**r);
    else {
        o.code = r->error().code;
        o.message = r->error().message;
    }
    return o;
}

outcome settled(const result<void>& r) {
    outcome o;
    o.delivered = true;
    o.ok = r.has_value();
    if (!o.ok) {
        o.code = r.error().code;
        o.message = r.error().message;
    }
    return o;
}

class StoreWriter : public ::testing::Test {
protected:
    void SetUp() override { open_store(); }

    void open_store() {
        auto opened = open_database({.path = path_});
        ASSERT_TRUE(opened.has_value()) << opened.error().message;
        db_ = std::move(*opened);
        store_ = std::make_unique<incident_store>(*db_, path_);
    }

    // The JSON of data_ incidents [first, first + n) as one page body.
    std::string body(std::size_t first, std::size_t n) const {
        std::string out = R"({"paging":{"count":)" + std::to_string(data_.size()) + R"(},"data":[)";
        for (std::size_t i = first; i < first + n; ++i) {
            if (i != first) out += ',';
            out += data_.json(i);
        }
        return out + "]}";
    }

    isync::model::page page(std::size_t first, std::size_t n, parse_mode mode = parse_mode::typed) const {
        auto parsed = isync::api::parse_page(body(first, n), mode);
        if (!parsed) throw std::runtime_error(parsed.error().message);
        return std::move(*parsed);
    }

    std::vector<std::string> ids(std::size_t first, std::size_t n) const {
        std::vector<std::string> out;
        for (std::size_t i = first; i < first + n; ++i) out.push_back(data_.id(i));
        std::sort(out.begin(), out.end());
        return out;
    }

    // Read through a connection of its own: only committed data is visible.
    std::vector<std::string> stored_ids() {
        SQLite::Database reader(path_, SQLite::OPEN_READONLY);
        return test_support::incident_ids(reader);
    }
    std::int64_t count_rows(const std::string& sql) {
        SQLite::Database reader(path_, SQLite::OPEN_READONLY);
        return reader.execAndGet(sql).getInt64();
    }

    // Every incident in [first, first + n) is stored exactly as the dataset says.
    void expect_stored(std::size_t first, std::size_t n) {
        SQLite::Database reader(path_, SQLite::OPEN_READONLY);
        for (std::size_t i = first; i < first + n; ++i) {
            auto got = test_support::read_incident(reader, data_.id(i));
            ASSERT_TRUE(got.has_value()) << data_.id(i);
            EXPECT_TRUE(*got == test_support::in_database_order(data_.expected_incident(i))) << data_.json(i);
        }
    }

    // Runs the coroutine `body()` on io_ until it and everything it started is done.
    template <class Body>
    void run(Body& body) {
        std::exception_ptr escaped;
        bool finished = false;
        auto done = [&](std::exception_ptr e) {
            escaped = e;
            finished = true;
        };
        net::co_spawn(io_, body(), done);
        io_.restart();
        io_.run();
        ASSERT_TRUE(finished);
        if (escaped) std::rethrow_exception(escaped);
    }

    temp_dir dir_;
    std::string path_ = dir_.file("incidents.db");
    const fake_api::dataset data_{{.seed = 9, .incidents = 60}};
    std::unique_ptr<SQLite::Database> db_;
    std::unique_ptr<incident_store> store_;
    net::io_context io_;
};

// A step hook that throws at the `nth` step named `step` (counted from the
// writer's start) while armed, and counts every step.
struct fault {
    std::string step;
    int nth = 0;
    std::atomic<bool> armed{true};
    std::atomic<int> incident_steps{0};
    std::atomic<int> commit_steps{0};
    std::atomic<int> seen_of_step{0};

    void operator()(std::string_view name) {
        if (name == "incident") ++incident_steps;
        if (name == "commit") ++commit_steps;
        if (name == step && ++seen_of_step == nth && armed) throw std::runtime_error("injected failure at " + step);
    }
};

}  // namespace

TEST_F(StoreWriter, TypedAndUntypedPagesOfTwoLedgersAllLand) {
    fault hook;  // counts the incidents handed to the store, never throws
    store_->set_step_hook(std::ref(hook));
    store_writer writer(io_.get_executor(), *store_);
    auto a = writer.open_ledger();
    auto b = writer.open_ledger();
    std::vector<outcome> tickets, flushes, again;
    std::int64_t changes_before = -1, changes_after = -1;
    int typed_before = -1, typed_after = -1;

    auto body = [&]() -> net::awaitable<void> {
        // Ledger a: typed pages; ledger b: untyped ones; interleaved.
        std::vector<std::shared_ptr<store_writer::write_ticket>> pending;
        pending.push_back(writer.submit(a, page(0, 10), t1, std::nullopt));
        pending.push_back(writer.submit(b, page(10, 10, parse_mode::untyped), t1, std::nullopt));
        pending.push_back(writer.submit(a, page(20, 7), t1, std::nullopt));
        pending.push_back(writer.submit(b, page(27, 13, parse_mode::untyped), t1, std::nullopt));
        for (auto& t : pending) tickets.push_back(settled(co_await t->wait()));
        flushes.push_back(settled(co_await writer.flush(a)));
        flushes.push_back(settled(co_await writer.flush(b)));

        // The same untyped page again: every incident is looked up, none typed or written.
        auto total_changes = [db = db_.get()](isync::store::sync_store&) -> result<std::int64_t> {
            return sqlite3_total_changes64(db->getHandle());
        };
        changes_before = (co_await writer.call(total_changes)).value();
        typed_before = hook.incident_steps.load();
        auto second = writer.submit(b, page(10, 10, parse_mode::untyped), t2, std::nullopt);
        again.push_back(settled(co_await second->wait()));
        again.push_back(settled(co_await writer.flush(b)));
        changes_after = (co_await writer.call(total_changes)).value();
        typed_after = hook.incident_steps.load();
    };
    run(body);

    ASSERT_EQ(tickets.size(), 4u);
    const char* want[] = {"seen 10, inserted 10, changed 0, unchanged 0",
                          "seen 10, inserted 10, changed 0, unchanged 0", "seen 7, inserted 7, changed 0, unchanged 0",
                          "seen 13, inserted 13, changed 0, unchanged 0"};
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_TRUE(tickets[i].delivered) << i;
        EXPECT_TRUE(tickets[i].ok) << i << ": " << tickets[i].message;
        EXPECT_EQ(tickets[i].counts, want[i]) << i;
    }
    for (const auto& f : flushes) EXPECT_TRUE(f.ok) << f.message;
    EXPECT_EQ(stored_ids(), ids(0, 40));
    expect_stored(0, 40);

    ASSERT_EQ(again.size(), 2u);
    EXPECT_TRUE(again[0].ok) << again[0].message;
    EXPECT_EQ(again[0].counts, "seen 10, inserted 0, changed 0, unchanged 10");
    EXPECT_TRUE(again[1].ok) << again[1].message;
    EXPECT_EQ(changes_after - changes_before, 0) << "an unchanged untyped page must write nothing";
    EXPECT_EQ(typed_after - typed_before, 0) << "nor be typed and handed to the store";
    EXPECT_EQ(stored_ids(), ids(0, 40));
}

TEST_F(StoreWriter, UntypedPageTypesAndWritesOnlyTheChangedIncidents) {
    const std::string v1 = isync::test::documented_example_incident_json("000000000000000000000001");
    const std::string v2 = isync::test::replace_once(v1, R"("risk_level": "high")", R"("risk_level": "critical")");
    const std::string other = isync::test::documented_example_incident_json("000000000000000000000002");
    auto first = isync::api::parse_page(isync::test::page_body(2, {v1, other}), parse_mode::untyped);
    auto second = isync::api::parse_page(isync::test::page_body(2, {v2, other}), parse_mode::untyped);
    ASSERT_TRUE(first && second);

    fault hook;  // counts the incidents handed to the store, never throws
    store_->set_step_hook(std::ref(hook));
    store_writer writer(io_.get_executor(), *store_);
    auto ledger = writer.open_ledger();
    std::vector<outcome> got;
    int typed_before = -1;
    auto body = [&]() -> net::awaitable<void> {
        auto written_first = writer.submit(ledger, *first, t1, std::nullopt);
        got.push_back(settled(co_await written_first->wait()));
        typed_before = hook.incident_steps.load();
        auto written_second = writer.submit(ledger, *second, t2, std::nullopt);
        got.push_back(settled(co_await written_second->wait()));
        got.push_back(settled(co_await writer.flush(ledger)));
    };
    run(body);

    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].counts, "seen 2, inserted 2, changed 0, unchanged 0") << got[0].message;
    EXPECT_EQ(got[1].counts, "seen 2, inserted 0, changed 1, unchanged 1") << got[1].message;
    EXPECT_EQ(hook.incident_steps.load() - typed_before, 1) << "only the changed incident is typed and written";
    EXPECT_TRUE(got[2].ok) << got[2].message;
    SQLite::Database reader(path_, SQLite::OPEN_READONLY);
    auto stored = test_support::read_incident(reader, "000000000000000000000001");
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->risk_level, "critical");
    EXPECT_EQ(stored->raw_json, v2);
}

TEST_F(StoreWriter, AFailedTransactionFailsEveryLedgerInItAndTheWriterRecovers) {
    // Pages of two incidents each: A1 and B1 take incident steps 1-4; the
    // 5th is the first incident of A2.
    fault hook{.step = "incident", .nth = 5};
    store_->set_step_hook(std::ref(hook));  // before the writer: its thread reads the hook
    gate blocked;                           // outlives the writer, whose thread may be waiting on it
    store_writer writer(io_.get_executor(), *store_, no_age_limit);
    open_on_exit opener{blocked};
    auto a = writer.open_ledger();
    auto b = writer.open_ledger();
    auto c = writer.open_ledger();
    std::vector<outcome> tickets, flushes, late;
    outcome c_ticket, c_flush;

    auto body = [&]() -> net::awaitable<void> {
        writer.post([&blocked](isync::store::sync_store&) { blocked.wait(); });
        auto a1 = writer.submit(a, page(0, 2), t1, std::nullopt);
        auto b1 = writer.submit(b, page(2, 2), t1, std::nullopt);
        auto a2 = writer.submit(a, page(4, 2), t1, std::nullopt);
        auto b2 = writer.submit(b, page(6, 2), t1, std::nullopt);
        blocked.open();
        const std::vector<ticket_ptr> queued{a1, b1, a2, b2};
        for (const auto& t : queued) tickets.push_back(settled(co_await t->wait()));
        flushes.push_back(settled(co_await writer.flush(a)));
        flushes.push_back(settled(co_await writer.flush(b)));
        // A failed ledger stays failed: a later page of it is refused too.
        auto a3 = writer.submit(a, page(8, 2), t1, std::nullopt);
        late.push_back(settled(co_await a3->wait()));

        auto c1 = writer.submit(c, page(10, 2), t2, std::nullopt);
        c_ticket = settled(co_await c1->wait());
        c_flush = settled(co_await writer.flush(c));
    };
    run(body);

    ASSERT_EQ(tickets.size(), 4u);
    EXPECT_TRUE(tickets[0].ok) << "A1 was written into the open transaction: " << tickets[0].message;
    EXPECT_EQ(tickets[0].counts, "seen 2, inserted 2, changed 0, unchanged 0");
    EXPECT_TRUE(tickets[1].ok) << "B1 was written into the open transaction: " << tickets[1].message;
    EXPECT_EQ(tickets[1].counts, "seen 2, inserted 2, changed 0, unchanged 0");
    EXPECT_FALSE(tickets[2].ok) << "A2 failed";
    EXPECT_EQ(tickets[2].code, errc::database);
    EXPECT_TRUE(contains(tickets[2].message, "injected failure at incident"));
    EXPECT_FALSE(tickets[3].ok) << "B2 must be refused: B1 was lost with the transaction";
    EXPECT_TRUE(contains(tickets[3].message, "injected failure at incident"));
    ASSERT_EQ(flushes.size(), 2u);
    for (const auto& f : flushes) {
        EXPECT_FALSE(f.ok);
        EXPECT_TRUE(contains(f.message, "injected failure at incident"));
    }
    ASSERT_EQ(late.size(), 1u);
    EXPECT_FALSE(late[0].ok);
    EXPECT_EQ(hook.incident_steps.load(), 7) << "A1, B1, the failing first incident of A2, then C's two; B2 and A3 "
                                                "were refused without being written";

    // C's page committed on its own after the failure.
    EXPECT_TRUE(c_ticket.ok) << c_ticket.message;
    EXPECT_EQ(c_ticket.counts, "seen 2, inserted 2, changed 0, unchanged 0");
    EXPECT_TRUE(c_flush.ok) << c_flush.message;
    // None of A1, B1, A2, B2 (one rolled-back transaction); only C's page.
    EXPECT_EQ(stored_ids(), ids(10, 2));
    expect_stored(10, 2);
}

namespace {

// What a slice of two pages (the second with the finish) ended with.
struct slice_run {
    std::vector<outcome> tickets;
    outcome flush;
    std::optional<std::int64_t> watermark;
    bool watermark_read = false;
    std::int64_t runs = -1;           // sync_runs rows after the flush
    std::vector<std::string> stored;  // incident ids after the flush
};

// The slice of the tests below: two pages, the second one finishing it.
const slice_report two_page_slice{.pair = pair_a,
                                  .from_ms = t1 - 3'600'000,
                                  .to_ms = t1 - 60'000,
                                  .started_ms = t1 - 5'000,
                                  .pages = 1,
                                  .counts = {.seen = 3, .inserted = 3}};

// Submits `first`, then `last` finishing two_page_slice, for `owner`; with
// `held`, while the writer thread waits on it, so that both pages go into one
// transaction. Then waits for both tickets and the ledger's flush, and reads
// pair_a's watermark, into `out`. (The pages are named by the caller: see the
// GCC 12 note.)
net::awaitable<void> write_two_page_slice(store_writer& writer, gate* held, std::shared_ptr<store_writer::ledger> owner,
                                          const isync::model::page& first, const isync::model::page& last,
                                          std::int64_t now_ms, slice_run& out) {
    if (held) writer.post([held](isync::store::sync_store&) { held->wait(); });
    const std::vector<ticket_ptr> queued{writer.submit(owner, first, now_ms, std::nullopt),
                                         writer.submit(owner, last, now_ms, two_page_slice)};
    if (held) held->open();
    for (const auto& t : queued) out.tickets.push_back(settled(co_await t->wait()));
    out.flush = settled(co_await writer.flush(owner));
    auto read = [](isync::store::sync_store& s) { return s.watermark(pair_a); };
    auto wm = co_await writer.call(read);
    out.watermark_read = wm.has_value();
    if (wm) out.watermark = *wm;
}

}  // namespace

TEST_F(StoreWriter, TheSlicesLastPageMovesTheWatermarkWhenItsTransactionCommits) {
    fault hook{.step = "commit", .nth = 0};  // counts commits, never throws
    store_->set_step_hook(std::ref(hook));
    gate blocked;  // outlives the writer, whose thread may be waiting on it
    store_writer writer(io_.get_executor(), *store_, no_age_limit);
    open_on_exit opener{blocked};
    auto a = writer.open_ledger();
    slice_run got;
    const auto first = page(0, 3);
    const auto last = page(3, 4);

    auto body = [&]() -> net::awaitable<void> {
        co_await write_two_page_slice(writer, &blocked, a, first, last, t1, got);
    };
    run(body);

    for (const auto& t : got.tickets) EXPECT_TRUE(t.ok) << t.message;
    EXPECT_TRUE(got.flush.ok) << got.flush.message;
    EXPECT_EQ(hook.commit_steps.load(), 1) << "both pages and the watermark in one transaction";
    ASSERT_TRUE(got.watermark_read);
    EXPECT_EQ(got.watermark, two_page_slice.to_ms);
    EXPECT_EQ(stored_ids(), ids(0, 7));
    // The run row: the slice's earlier totals plus the finishing page.
    EXPECT_EQ(count_rows("SELECT COUNT(*) FROM sync_runs WHERE status = 'ok' AND pages = 2 AND incidents_seen = 7 "
                         "AND incidents_new = 7 AND to_ms = " +
                         std::to_string(two_page_slice.to_ms)),
              1);
}

// A failure anywhere in the transaction that holds the finishing page: in the
// slice's first page, in the finishing page itself, or at commit (after the
// watermark was written into the transaction).
namespace {

struct slice_fault {
    const char* name;
    const char* step;
    int nth;             // counted from the writer's start: the first page holds incident steps 1-3
    bool first_page_ok;  // what the tickets report: written into the transaction, or not
    bool last_page_ok;
};

void PrintTo(const slice_fault& f, std::ostream* os) { *os << f.name; }

}  // namespace

class StoreWriterSliceFailure : public StoreWriter, public ::testing::WithParamInterface<slice_fault> {};

TEST_P(StoreWriterSliceFailure, LeavesTheWatermarkWhereItWas) {
    fault hook{.step = GetParam().step, .nth = GetParam().nth};
    store_->set_step_hook(std::ref(hook));
    gate blocked;  // outlives the writer, whose thread may be waiting on it
    store_writer writer(io_.get_executor(), *store_, no_age_limit);
    open_on_exit opener{blocked};
    auto a = writer.open_ledger();
    slice_run got;
    slice_run retry;
    const auto first = page(0, 3);
    const auto last = page(3, 4);

    auto body = [&]() -> net::awaitable<void> {
        co_await write_two_page_slice(writer, &blocked, a, first, last, t1, got);
        got.runs = count_rows("SELECT COUNT(*) FROM sync_runs");
        got.stored = stored_ids();

        // The same slice again in a new ledger, without the fault, commits in full.
        hook.armed = false;
        auto again = writer.open_ledger();
        co_await write_two_page_slice(writer, nullptr, again, first, last, t2, retry);
    };
    run(body);

    EXPECT_GE(hook.seen_of_step.load(), hook.nth) << "the fault was reached";
    ASSERT_EQ(got.tickets.size(), 2u);
    EXPECT_EQ(got.tickets[0].ok, GetParam().first_page_ok) << got.tickets[0].message;
    EXPECT_EQ(got.tickets[1].ok, GetParam().last_page_ok) << got.tickets[1].message;
    if (!GetParam().last_page_ok) {
        EXPECT_TRUE(contains(got.tickets[1].message, "injected failure"));
    }
    EXPECT_FALSE(got.flush.ok) << "the slice lost a page";
    EXPECT_TRUE(contains(got.flush.message, "injected failure"));
    ASSERT_TRUE(got.watermark_read);
    EXPECT_EQ(got.watermark, std::nullopt);
    EXPECT_EQ(got.runs, 0);
    EXPECT_TRUE(got.stored.empty()) << "both pages were in the rolled-back transaction";

    for (const auto& t : retry.tickets) EXPECT_TRUE(t.ok) << t.message;
    EXPECT_TRUE(retry.flush.ok) << retry.flush.message;
    EXPECT_EQ(count_rows("SELECT COUNT(*) FROM sync_runs WHERE status = 'ok' AND pages = 2 AND incidents_seen = 7 AND "
                         "incidents_new = 7"),
              1);
    ASSERT_TRUE(retry.watermark_read);
    EXPECT_EQ(retry.watermark, two_page_slice.to_ms);
    EXPECT_EQ(stored_ids(), ids(0, 7));
}

INSTANTIATE_TEST_SUITE_P(StoreWriter, StoreWriterSliceFailure,
                         ::testing::Values(slice_fault{"InTheFirstPage", "incident", 2, false, false},
                                           slice_fault{"InTheFinishingPage", "incident", 5, true, false},
                                           slice_fault{"AtCommitAfterTheWatermarkWasWritten", "commit", 1, true, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(StoreWriter, SliceTotalsCountTheUnchangedIncidentsOfAnUntypedPage) {
    store_writer writer(io_.get_executor(), *store_);
    auto earlier = writer.open_ledger();
    auto a = writer.open_ledger();
    const slice_report finish{.pair = pair_a,
                              .from_ms = t1 - 3'600'000,
                              .to_ms = t1 - 60'000,
                              .started_ms = t1 - 5'000,
                              .pages = 0,
                              .counts = {}};
    outcome first, last, flushed;
    auto body = [&]() -> net::awaitable<void> {
        auto stored_first = writer.submit(earlier, page(0, 4), t1, std::nullopt);
        first = settled(co_await stored_first->wait());
        // 4 of these 10 are stored already and unchanged.
        auto finishing = writer.submit(a, page(0, 10, parse_mode::untyped), t2, finish);
        last = settled(co_await finishing->wait());
        flushed = settled(co_await writer.flush(a));
    };
    run(body);

    EXPECT_TRUE(first.ok) << first.message;
    EXPECT_EQ(last.counts, "seen 10, inserted 6, changed 0, unchanged 4") << last.message;
    EXPECT_TRUE(flushed.ok) << flushed.message;
    // As a typed page would have recorded it: every incident seen, the new ones new.
    EXPECT_EQ(count_rows("SELECT COUNT(*) FROM sync_runs WHERE pages = 1 AND incidents_seen = 10 AND "
                         "incidents_new = 6 AND incidents_changed = 0"),
              1);
}

namespace {

// Commits made while writing three queued pages of two new incidents each.
struct limit_case {
    const char* name;
    writer_limits limits;
    int commits;
};

void PrintTo(const limit_case& c, std::ostream* os) { *os << c.name; }

}  // namespace

class StoreWriterLimits : public StoreWriter, public ::testing::WithParamInterface<limit_case> {};

TEST_P(StoreWriterLimits, CommitsAtTheLimitsOrWhenTheQueueIsEmpty) {
    fault hook{.step = "commit", .nth = 0};  // counts, never throws
    store_->set_step_hook(std::ref(hook));
    gate blocked;
    store_writer writer(io_.get_executor(), *store_, GetParam().limits);
    open_on_exit opener{blocked};
    auto a = writer.open_ledger();
    std::vector<outcome> got;
    outcome flushed;

    auto body = [&]() -> net::awaitable<void> {
        writer.post([&blocked](isync::store::sync_store&) { blocked.wait(); });
        auto p1 = writer.submit(a, page(0, 2), t1, std::nullopt);
        auto p2 = writer.submit(a, page(2, 2), t1, std::nullopt);
        auto p3 = writer.submit(a, page(4, 2), t1, std::nullopt);
        blocked.open();
        const std::vector<ticket_ptr> queued{p1, p2, p3};
        for (const auto& t : queued) got.push_back(settled(co_await t->wait()));
        flushed = settled(co_await writer.flush(a));
    };
    run(body);

    for (const auto& t : got) EXPECT_TRUE(t.ok) << t.message;
    EXPECT_TRUE(flushed.ok) << flushed.message;
    EXPECT_EQ(hook.commit_steps.load(), GetParam().commits);
    EXPECT_EQ(stored_ids(), ids(0, 6));
}

INSTANTIATE_TEST_SUITE_P(
    StoreWriter, StoreWriterLimits,
    ::testing::Values(
        // One commit per page: each page reaches the limit.
        limit_case{"OneIncident", {.max_batch_incidents = 1, .max_batch_age = std::chrono::hours(1)}, 3},
        // The limit counts across pages: pages 1+2 reach 4, page 3 commits when the queue is empty.
        limit_case{"FourIncidents", {.max_batch_incidents = 4, .max_batch_age = std::chrono::hours(1)}, 2},
        // The default incident limit: everything queued goes into one transaction.
        limit_case{"DefaultIncidents", no_age_limit, 1},
        // An age of zero: every page is already too old.
        limit_case{"ZeroAge", {.max_batch_incidents = 5000, .max_batch_age = std::chrono::milliseconds(0)}, 3}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(StoreWriter, UnchangedIncidentsDoNotCountTowardsTheIncidentLimit) {
    fault hook{.step = "commit", .nth = 0};
    store_->set_step_hook(std::ref(hook));
    gate blocked;
    store_writer writer(io_.get_executor(), *store_,
                        {.max_batch_incidents = 1, .max_batch_age = std::chrono::hours(1)});
    open_on_exit opener{blocked};
    auto a = writer.open_ledger();
    std::vector<outcome> got;
    int commits_before = -1;

    auto body = [&]() -> net::awaitable<void> {
        auto stored_first = writer.submit(a, page(0, 6), t1, std::nullopt);
        got.push_back(settled(co_await stored_first->wait()));
        got.push_back(settled(co_await writer.flush(a)));
        commits_before = hook.commit_steps.load();
        // Three pages of stored, unchanged incidents: nothing written, no limit reached.
        writer.post([&blocked](isync::store::sync_store&) { blocked.wait(); });
        auto p1 = writer.submit(a, page(0, 2, parse_mode::untyped), t2, std::nullopt);
        auto p2 = writer.submit(a, page(2, 2, parse_mode::untyped), t2, std::nullopt);
        auto p3 = writer.submit(a, page(4, 2), t2, std::nullopt);
        blocked.open();
        const std::vector<ticket_ptr> queued{p1, p2, p3};
        for (const auto& t : queued) got.push_back(settled(co_await t->wait()));
        got.push_back(settled(co_await writer.flush(a)));
    };
    run(body);

    ASSERT_EQ(got.size(), 6u);
    for (const auto& o : got) EXPECT_TRUE(o.ok) << o.message;
    for (std::size_t i = 2; i < 5; ++i) EXPECT_EQ(got[i].counts, "seen 2, inserted 0, changed 0, unchanged 2") << i;
    EXPECT_EQ(hook.commit_steps.load() - commits_before, 1);
}

TEST_F(StoreWriter, CallRunsOnTheWriterThreadAfterCommittingWhatWasWritten) {
    gate blocked;  // outlives the writer, whose thread may be waiting on it
    store_writer writer(io_.get_executor(), *store_, no_age_limit);
    open_on_exit opener{blocked};
    auto a = writer.open_ledger();
    const auto test_thread = std::this_thread::get_id();
    bool in_transaction = true;
    bool on_writer_thread = false;
    std::int64_t visible = -1;
    outcome written;

    auto body = [&]() -> net::awaitable<void> {
        writer.post([&blocked](isync::store::sync_store&) { blocked.wait(); });
        auto p1 = writer.submit(a, page(0, 5), t1, std::nullopt);
        // Queued behind the page, with nothing after it to keep the transaction open.
        auto probe = [&](isync::store::sync_store& s) -> result<std::int64_t> {
            in_transaction = s.in_transaction();
            on_writer_thread = std::this_thread::get_id() != test_thread;
            return count_rows("SELECT COUNT(*) FROM incidents");  // another connection: committed rows only
        };
        auto pending = writer.call(probe);
        blocked.open();
        written = settled(co_await p1->wait());
        auto r = co_await std::move(pending);
        if (r) visible = *r;
    };
    run(body);

    EXPECT_TRUE(written.ok) << written.message;
    EXPECT_FALSE(in_transaction);
    EXPECT_TRUE(on_writer_thread);
    EXPECT_EQ(visible, 5);
}

TEST_F(StoreWriter, CommitsOnItsOwnOnceNothingIsWaiting) {
    // No flush, no limit reached: the page must become durable because the
    // queue is empty. The test waits for the store's "committed" step (a
    // condition variable, not a sleep); the bound only turns a writer that
    // never commits into a failure instead of a hang.
    std::mutex mutex;
    std::condition_variable committed_cv;
    int committed = 0;
    store_->set_step_hook([&](std::string_view step) {
        if (step != "committed") return;
        {
            std::lock_guard lock(mutex);
            ++committed;
        }
        committed_cv.notify_all();
    });
    store_writer writer(io_.get_executor(), *store_, no_age_limit);
    auto a = writer.open_ledger();
    outcome written;
    bool committed_in_time = false;
    std::vector<std::string> visible;

    auto body = [&]() -> net::awaitable<void> {
        auto ticket = writer.submit(a, page(0, 4), t1, std::nullopt);
        written = settled(co_await ticket->wait());
        {
            std::unique_lock lock(mutex);
            committed_in_time = committed_cv.wait_for(lock, std::chrono::seconds(60), [&] { return committed > 0; });
        }
        visible = stored_ids();  // another connection: committed rows only
    };
    run(body);

    EXPECT_TRUE(written.ok) << written.message;
    EXPECT_TRUE(committed_in_time) << "the writer kept the transaction open with nothing queued";
    EXPECT_EQ(visible, ids(0, 4));
}

TEST_F(StoreWriter, AMomentaryEmptyQueueDoesNotCommit) {
    // A backfill hands pages over a few milliseconds apart; the queue is
    // empty between them. With an idle grace of an hour, two pages written
    // one after the other share one transaction, which only the flush commits.
    int commits = 0;
    store_->set_step_hook([&](std::string_view step) { commits += step == "committed"; });  // writer thread only
    const writer_limits patient{.max_batch_incidents = writer_limits{}.max_batch_incidents,
                                .max_batch_age = std::chrono::hours(1),
                                .idle_commit = std::chrono::hours(1)};
    store_writer writer(io_.get_executor(), *store_, patient);
    auto a = writer.open_ledger();
    std::vector<outcome> got;
    std::vector<std::string> visible_after_first, visible_after_second;
    int commits_before_flush = -1;
    auto body = [&]() -> net::awaitable<void> {
        auto first = writer.submit(a, page(0, 4), t1, std::nullopt);
        got.push_back(settled(co_await first->wait()));
        visible_after_first = stored_ids();
        auto second = writer.submit(a, page(4, 4), t1, std::nullopt);
        got.push_back(settled(co_await second->wait()));
        visible_after_second = stored_ids();
        auto count_commits = [&](isync::store::sync_store&) -> result<int> { return commits; };
        commits_before_flush = (co_await writer.call(count_commits)).value();  // call() is a barrier: it commits first
        got.push_back(settled(co_await writer.flush(a)));
    };
    run(body);

    ASSERT_EQ(got.size(), 3u);
    for (const auto& o : got) EXPECT_TRUE(o.ok) << o.message;
    EXPECT_TRUE(visible_after_first.empty()) << "committed while the next page was on its way";
    EXPECT_TRUE(visible_after_second.empty());
    EXPECT_EQ(commits_before_flush, 1) << "both pages in one transaction";
    EXPECT_EQ(stored_ids(), ids(0, 8));
}

TEST_F(StoreWriter, DestructorWritesAndCommitsEverythingQueued) {
    std::vector<outcome> got;
    std::vector<std::shared_ptr<store_writer::write_ticket>> pending;
    {
        gate blocked;
        store_writer writer(io_.get_executor(), *store_, no_age_limit);
        open_on_exit opener{blocked};
        auto a = writer.open_ledger();
        writer.post([&blocked](isync::store::sync_store&) { blocked.wait(); });
        pending.push_back(writer.submit(a, page(0, 3), t1, std::nullopt));
        pending.push_back(writer.submit(a, page(3, 3, parse_mode::untyped), t1, std::nullopt));
        pending.push_back(writer.submit(a, page(6, 3), t1, std::nullopt));
        // Opened here, the writer usually resumes after the destructor has
        // asked it to stop; either way every queued page must end up durable.
        blocked.open();
    }
    // The writer is gone, so every ticket it will ever deliver is already
    // posted to the loop: run only what is ready (a ticket the writer dropped
    // would otherwise keep the loop waiting forever).
    bool finished = false;
    auto body = [&]() -> net::awaitable<void> {
        for (auto& t : pending) got.push_back(settled(co_await t->wait()));
        finished = true;
    };
    auto done = [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    };
    net::co_spawn(io_, body(), done);
    io_.restart();
    io_.poll();
    EXPECT_TRUE(finished) << "a queued page's ticket was never delivered";
    ASSERT_EQ(got.size(), 3u);
    for (const auto& o : got) EXPECT_TRUE(o.ok) << o.message;

    // Reopen the database from scratch: the rows are on disk.
    store_.reset();
    db_.reset();
    open_store();
    EXPECT_EQ(test_support::incident_ids(*db_), ids(0, 9));
}

TEST_F(StoreWriter, SubmitWhenRoomWaitsWhileMaxQueuedPagesWaitForTheWriter) {
    gate blocked;
    store_writer writer(io_.get_executor(), *store_,
                        {.max_batch_incidents = writer_limits{}.max_batch_incidents,
                         .max_batch_age = std::chrono::hours(1),
                         .max_queued_pages = 2});
    open_on_exit opener{blocked};
    auto a = writer.open_ledger();
    bool third_handed_over = false;
    bool third_waited = false;
    std::vector<outcome> got;

    auto body = [&]() -> net::awaitable<void> {
        writer.post(
            [&blocked](isync::store::sync_store&) { blocked.wait(); });  // the writer takes nothing from its queue
        auto p1 = co_await writer.submit_when_room(a, page(0, 10), t1, std::nullopt);
        auto p2 = co_await writer.submit_when_room(a, page(10, 10), t1, std::nullopt);
        ticket_ptr p3;
        net::experimental::channel<void(boost::system::error_code)> third_done(io_, 1);
        net::co_spawn(
            io_,
            [&]() -> net::awaitable<void> {
                p3 = co_await writer.submit_when_room(a, page(20, 10), t1, std::nullopt);
                third_handed_over = true;
            },
            [&](std::exception_ptr) { third_done.try_send(boost::system::error_code{}); });
        // Let the third submitter run until it waits (handlers, not time).
        for (int i = 0; i < 10; ++i) co_await net::post(io_.get_executor(), net::use_awaitable);
        third_waited = !third_handed_over;
        blocked.open();
        got.push_back(settled(co_await p1->wait()));
        got.push_back(settled(co_await p2->wait()));
        // Each page written gives its place back: the third gets in.
        co_await third_done.async_receive(net::use_awaitable);
        got.push_back(settled(co_await p3->wait()));
        got.push_back(settled(co_await writer.flush(a)));
    };
    run(body);

    EXPECT_TRUE(third_waited) << "a third page was taken while two waited for the writer";
    ASSERT_EQ(got.size(), 4u);
    for (const auto& o : got) EXPECT_TRUE(o.ok) << o.message;
    EXPECT_EQ(stored_ids(), ids(0, 30));
}
