#pragma once
// The sync engine: one coroutine per (app_id, tld) pair, at most
// `sync.concurrency` fetching at once, each walking its window slice by slice.
// Pages go to the store_writer thread (the database is only touched there
// while the engine lives), which writes one while the next is fetched; a
// slice's watermark commits in the same transaction as its last page.

#include "api/account_settings.hpp"
#include "api/backoff.hpp"
#include "api/page_parser.hpp"
#include "config/config.hpp"
#include "config/secret.hpp"
#include "http/connection.hpp"
#include "store/sync_store.hpp"
#include "sync/concurrency_limit.hpp"
#include "sync/fetcher.hpp"
#include "sync/page_source.hpp"
#include "sync/slot_pool.hpp"
#include "sync/store_writer.hpp"
#include "sync/sync_stats.hpp"
#include "sync/window.hpp"
#include "util/error.hpp"
#include "util/task_group.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace isync::sync {

struct engine_settings {
    config::sync_config sync;
    config::retry_config retry;
    http::connection_options connection;  // endpoint, proxy, timeout, limits
    int page_size = 50;
    concurrency_settings limits;  // requests in flight to the API (api.max_in_flight)
};

// Makes the page source a poll talks to: the real one over HTTPS, or a
// scripted one in tests. Called at start and on every SIGHUP.
using source_factory =
    std::function<std::shared_ptr<page_source>(const engine_settings& settings, const config::secret& token)>;

// After `streak` polls in a row that failed only because the database was
// busy (a deadlock, a lock or serialization failure): how soon the pair is
// polled again. 1, 2, 4 ... s, at most a minute (sync.interval caps it too).
inline std::chrono::milliseconds busy_retry_delay(int streak) {
    const std::chrono::milliseconds doubled(1000LL << std::clamp(streak - 1, 0, 6));  // 1 s .. 64 s
    return std::min(doubled, std::chrono::milliseconds(60000));
}

// How a pair's last poll ended; `elsewhere`: not polled, another daemon
// sharing the database holds the pair's lease.
enum class pair_status { ok, failed, auth_failed, cancelled, elsewhere };

struct clock_source {
    std::function<std::int64_t()> now_ms;  // wall clock, epoch milliseconds
    std::function<double()> uniform01;     // jitter for backoff and scheduling
};

// The real clock and a seeded random source.
clock_source system_clock_source();

class engine {
public:
    // Without `make_source`, polls talk to the API through an http_page_source.
    engine(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls, store::sync_store& store,
           engine_settings settings, config::secret token, clock_source clock, source_factory make_source = {});

    // How a failure's log line ends: `run` retries at the next interval,
    // `once` does not (the default says nothing).
    void set_retry_hint(std::string hint) { retry_hint_ = std::move(hint); }

    // One pass over every pair (with sync.discover, the pairs discovery
    // finds first, alongside sync.pairs). True only when every pair succeeded
    // (and discovery, when on).
    boost::asio::awaitable<bool> run_once();

    // From now on a poll re-reads [from_ms, to_ms) instead of the window
    // after the watermark, and moves no watermark (`resync`).
    void set_range(slice range) { range_ = range; }

    // Polls every pair: the first at once, then every `sync.interval` (plus
    // up to 10% jitter), until stop(). With sync.discover, the pairs
    // discovery finds join as it finds them, and leave when it no longer does.
    boost::asio::awaitable<void> run();

    ~engine();

    // Cancels every request and wait in flight; run()/run_once() then return
    // once the pages already fetched are written.
    void stop();
    // The second phase of a stop that is taking too long: the writer's SQLite
    // waits end now (another process holding the lock, a slow disk), the open
    // transaction rolls back, and the polls still waiting on it end cancelled.
    void interrupt_writes();
    // Completes once the writer thread has done everything handed to it so
    // far (after run()/run_once() returned: their last pages and idle work).
    boost::asio::awaitable<void> drain();

    // Applies a reloaded configuration and token (SIGHUP): pairs added start
    // polling, pairs removed stop, new intervals apply from the next wait;
    // with sync.discover, discovery runs again at once.
    // During run_once() it only replaces the settings for a later pass: the
    // pass ends with the pairs and settings it began with.
    void reconfigure(engine_settings settings, config::secret token);

    const sync_stats& stats() const { return stats_; }
    // The API source's counters: the adaptive limit, requests in flight, bytes.
    source_stats source() const { return current_->source->stats(); }
    const std::map<config::pair, pair_status>& last_status() const { return last_status_; }
    // What is polled: sync.pairs and, with sync.discover, the pairs the last
    // successful discovery selected. Sorted, without repeats.
    std::vector<config::pair> polled_pairs() const;
    // The applications the last successful discovery listed (nullopt before one).
    const std::optional<std::vector<api::application>>& applications() const { return applications_; }
    // Every configured pair's health (pairs never polled have empty fields),
    // except the pairs another daemon sharing the database polls (their
    // health is that daemon's to report).
    std::map<config::pair, pair_health> health() const;
    // Sharing a database: the pairs another daemon held at this one's last try.
    const std::set<config::pair>& leased_elsewhere() const { return leased_elsewhere_; }
    bool shares_work() const { return shares_work_; }
    const engine_settings& settings() const { return current_->settings; }
    // What each pair polling right now has done so far (for logs, status and metrics).
    const std::map<config::pair, pair_progress>& progress() const { return progress_; }
    // Called after every pair poll (for sd_notify STATUS= lines).
    void on_pair_done(std::function<void(const config::pair&, pair_status)> f) { pair_done_ = std::move(f); }
    // Called when a pair's poll starts (queued for a slot) and when it ends,
    // so that what progress() says can be published at once.
    void on_polls_changed(std::function<void()> f) { polls_changed_ = std::move(f); }

private:
    // One poll of a pair: takes a concurrency slot, claims the pair when the
    // database is shared, walks its slices, records the outcome.
    boost::asio::awaitable<pair_status> sync_pair(config::pair pair);
    // Sharing a database: whether this daemon may poll `pair` now (its lease).
    boost::asio::awaitable<pair_status> claim(config::pair pair);
    // Sharing a database: renews this daemon's leases every
    // lease_renew_every_, giving up idle pairs beyond its share.
    boost::asio::awaitable<void> keep_leases();
    // What one poll of a pair carries from slice to slice and page to page.
    struct poll_state {
        api::parse_mode mode = api::parse_mode::typed;  // how the next page is parsed
        std::int64_t incidents_read = 0;                // incidents in written pages, overlap re-reads included
        store::upsert_counts counts;                    // what the store did with them
        std::int64_t refused_skip = 0;                  // set by sync_slice: the deep offset the API refused
    };
    // Everything a poll reads from the configuration, fixed when it starts:
    // a SIGHUP replaces the engine's current snapshot, never a running poll's.
    struct snapshot {
        snapshot(engine_settings s, std::shared_ptr<page_source> src, std::function<double()> uniform01)
            : settings(std::move(s)), source(std::move(src)), backoff(settings.retry, std::move(uniform01)) {}
        engine_settings settings;
        std::shared_ptr<page_source> source;  // holds the token; shared by every poll of this snapshot
        api::backoff backoff;
    };
    // A page of a slice requested ahead of its walk: in flight (a task of
    // its own, cancelled when the walk no longer wants it) or arrived.
    struct page_ahead {
        explicit page_ahead(boost::asio::any_io_executor loop) : arrived(loop) {}
        std::uint64_t task = 0;
        one_shot<result<fetched_page>> arrived;
    };
    // Pages requested ahead, by a key (an offset); dropping them, or their
    // owner ending however it ends, cancels the requests still in flight.
    struct requested_pages {
        engine* self;
        std::shared_ptr<bool> engine_alive;
        std::map<std::int64_t, std::shared_ptr<page_ahead>> pages;
        void drop_all();
        ~requested_pages() { drop_all(); }
    };
    std::shared_ptr<const snapshot> make_snapshot(engine_settings settings, const config::secret& token);
    // Fetches the pages at `skips` of slice `s` at once, results in the same
    // order: parsed (in the poll's parse mode) when `parse`, else as bodies.
    boost::asio::awaitable<std::vector<result<fetched_page>>> fetch_pages(config::pair pair, slice s,
                                                                          std::vector<std::int64_t> skips,
                                                                          std::shared_ptr<poll_state> poll,
                                                                          std::shared_ptr<const snapshot> snap,
                                                                          bool parse);
    // The page a walk takes: a body fetched ahead is parsed now, in the
    // poll's current mode; one that does not parse is fetched again (with
    // the usual retries), as a broken page always was.
    boost::asio::awaitable<result<model::page>> take_page(config::pair pair, slice s, std::int64_t skip,
                                                          result<fetched_page> fetched,
                                                          std::shared_ptr<poll_state> poll,
                                                          std::shared_ptr<const snapshot> snap);
    boost::asio::awaitable<pair_status> poll_slices(config::pair pair, std::shared_ptr<const snapshot> snap);
    // The most incidents a slice may hold: sync.slice_incidents, or fewer once
    // the API has refused a deep offset (offset_limit_).
    std::int64_t slice_limit(const snapshot& snap) const;
    // After a page at offset `skip` was refused with a 4xx: slices hold fewer
    // than `skip` incidents from now on, so no walk reaches that offset again.
    void learn_offset_limit(const config::pair& pair, std::int64_t skip, const error& refusal);
    // Health, last status, duration histogram and the pair_done_ callback, in one place.
    void record_outcome(const config::pair& pair, pair_status status, double seconds);
    // Walks slice `s` whose first page is `first`, keeping the pages after
    // it requested ahead of the walk (pages_ahead), each on its own; with
    // room to spare at its end, it requests the first page of the `next`
    // slice into `next_first`, keyed by that slice's from_ms.
    boost::asio::awaitable<result<void>> sync_slice(config::pair pair, slice s,
                                                    std::shared_ptr<store_writer::ledger> ledger,
                                                    std::shared_ptr<poll_state> poll,
                                                    std::shared_ptr<const snapshot> snap, model::page first,
                                                    std::optional<slice> next, requested_pages& next_first);
    boost::asio::awaitable<result<void>> settle_all(std::deque<std::shared_ptr<store_writer::write_ticket>> tickets,
                                                    store::slice_report& report, std::shared_ptr<poll_state> poll);
    // Requests the page at `skip` of slice `s` as a body, unparsed (the walk
    // parses it when it takes it, in the poll's mode by then).
    std::shared_ptr<page_ahead> fetch_ahead(config::pair pair, slice s, std::int64_t skip,
                                            std::shared_ptr<poll_state> poll, std::shared_ptr<const snapshot> snap);
    // How many pages a slice's walk keeps requested ahead of it now.
    int pages_to_keep_ahead(const std::deque<std::shared_ptr<store_writer::write_ticket>>& in_writer,
                            const snapshot& snap) const;
    // Pages a pair keeps in flight ahead of its walk: as the walk takes one,
    // the next is requested, so a distant API always has this many of the
    // pair's round trips going (a gateway's usual cap is 8, and other pairs
    // fill what one leaves), few enough that four pairs' pages stay within
    // the daemon's memory budget at 1M (16 took a 1M backfill from 29 to 73 MiB).
    static constexpr int pages_ahead = 8;
    // Pages ahead while the writer is the slower side on a near API (a
    // backfill from loopback or a LAN): pages of the pair's not yet written,
    // or other pairs' pages filling half the writer's queue. Pages fetched
    // further ahead would only wait in memory.
    static constexpr int backlogged_pages_ahead = 2;
    // A distant API: round trips this long on average. The walk waits for
    // the network there, never for long on the writer (which writes a page in
    // 1-2 ms), so a moment's backlog must not shrink what is in flight.
    static constexpr std::chrono::milliseconds distant_rtt{20};
    // Waits until the writer has written `ticket`'s page, counts it in
    // `report` and `poll`, and picks the parse mode for the next page.
    boost::asio::awaitable<result<void>> settle(std::shared_ptr<store_writer::write_ticket> ticket,
                                                store::slice_report& report, std::shared_ptr<poll_state> poll);
    boost::asio::awaitable<void> poll_forever(config::pair pair);
    // Pair discovery (engine_discovery.cpp). One GET /v1/account-settings
    // with the retry policy; on success, the applications it lists replace
    // applications_ (each change logged); on failure they stay.
    enum class discovery_outcome { ok, failed, cancelled };
    boost::asio::awaitable<discovery_outcome> discover(std::shared_ptr<const snapshot> snap);
    // run(): discovers at once and then every sync.discover_interval (sooner
    // after a failure), starting and stopping pair loops to match.
    boost::asio::awaitable<void> discovery_loop();
    // run_once(): discovers once, then polls what it found beside sync.pairs.
    boost::asio::awaitable<void> discover_for_single_pass();
    // (Re)starts or ends discovery_loop as the current settings say.
    void restart_discovery();
    // Starts loops for polled pairs without one, stops those of pairs no
    // longer polled (their data stays). `cause` ends the log lines.
    void apply_pairs(std::string_view cause);
    // run_once(): one poll of `pair` as a task, its status into single_pass_.
    void spawn_single_poll(const config::pair& pair);
    // Health facts from the database, so that a restarted daemon knows each
    // pair's last success and error before its first poll ends. Read in the
    // constructor, before the writer thread owns the store.
    static std::map<config::pair, pair_health> stored_health(store::sync_store& store);
    void start_pair_loop(const config::pair& pair);
    boost::asio::awaitable<void> record_failure(store::slice_report report, error e);
    // Records the slice's failure (unless it was cancelled) and returns the error.
    boost::asio::awaitable<error> fail_slice(store::slice_report report, error e);

    boost::asio::any_io_executor executor_;
    boost::asio::ssl::context& tls_;
    clock_source clock_;
    source_factory make_source_;
    std::string retry_hint_;
    std::shared_ptr<const snapshot> current_;
    sync_stats stats_;
    util::task_group tasks_;
    // keep_leases(), while the polls in tasks_ run (polls_with_leases_kept()).
    util::task_group lease_keeper_;
    std::unique_ptr<slot_pool> slots_;                  // sync.concurrency
    std::map<config::pair, std::uint64_t> pair_tasks_;  // run(): pair -> task id
    std::map<config::pair, pair_status> last_status_;
    std::map<config::pair, pair_health> health_;
    std::map<config::pair, pair_progress> progress_;  // pairs polling now
    std::function<void(const config::pair&, pair_status)> pair_done_;
    std::function<void()> polls_changed_;
    bool stopping_ = false;
    bool polling_forever_ = false;  // run() is polling: reconfigure() starts and stops pair loops
    // False once the engine is gone: a coroutine frame destroyed later (with
    // the io_context, after a stop that hit its deadline) must not touch it.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    int active_pairs_ = 0;  // pairs polling or waiting for a concurrency slot
    // Sharing a database (store::sync_store::shares_work): the leases.
    bool shares_work_ = false;
    std::chrono::milliseconds lease_renew_every_{10000};
    // Polls in a row that failed only because the database was busy, by pair.
    std::map<config::pair, int> busy_streak_;
    std::set<config::pair> leased_elsewhere_;  // another daemon held them at the last look
    // For those: how soon its lease lapsed, as the last claim saw (0: unknown).
    std::map<config::pair, std::chrono::milliseconds> claim_again_in_;
    std::set<config::pair> claimed_busy_;  // held by this daemon and being polled now
    // When each lease this daemon holds lapses at the latest, by its own
    // clock: the time a claim or renewal was sent plus the lease's length. A
    // daemon that was stopped or cut off past it sends no more requests for
    // the pair (another daemon may poll it by now) and claims it again.
    std::map<config::pair, std::int64_t> lease_until_ms_;
    std::chrono::milliseconds lease_span_{30000};
    // Waits for every task in tasks_, renewing the leases meanwhile when
    // sharing a database (run() and run_once()).
    boost::asio::awaitable<void> polls_with_leases_kept();
    // Adds `pair` to leased_elsewhere_ (logged once, when it was not there).
    void note_leased_elsewhere(const config::pair& pair);
    // errc::database when sharing a database and `pair`'s lease may have lapsed.
    result<void> still_leased(const config::pair& pair) const;
    // The deepest offset the API accepts, as learned from a 4xx at a deeper
    // one (search backends refuse past a bound: Elasticsearch's default is
    // skip + take <= 10,000). The API's property: kept across polls and SIGHUPs.
    std::optional<std::int64_t> offset_limit_;
    std::optional<slice> range_;                                 // set_range()
    std::optional<std::vector<api::application>> applications_;  // the last successful discovery's
    // applications_ as the current sync.discover/include/exclude select them,
    // sorted: polled_pairs()' share, kept here because health(), /metrics and
    // the progress file ask for it far more often than it changes.
    std::vector<config::pair> discovered_;
    // Recomputes discovered_ (after a discovery, and after a SIGHUP).
    void select_discovered();
    std::optional<std::uint64_t> discovery_task_;  // run(): discovery_loop's task id
    bool discovery_failed_ = false;                // run_once(): its discovery failed
    struct single_pass {
        std::set<config::pair> started;
        std::map<config::pair, pair_status> results;
    };
    std::shared_ptr<single_pass> single_pass_;  // run_once(): the pass in progress
    // Last: destroyed first, so its thread drains while everything above exists.
    std::unique_ptr<store_writer> writer_;
};

}  // namespace isync::sync
