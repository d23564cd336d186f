#include "sync/engine.hpp"

#include "store/hashing.hpp"

#include "log/logging.hpp"
#include "sync/fetcher.hpp"
#include "sync/http_page_source.hpp"
#include "sync/page_walk.hpp"
#include "util/timestamp.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <deque>
#include <map>
#include <random>

namespace isync::sync {
namespace net = boost::asio;
namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::string pair_name(const config::pair& p) { return fmt::format("{}/{}", p.app_id, p.tld); }

// Frees a concurrency slot when the pair's poll ends, however it ends (but
// not when the frame outlived the engine that owns the pool).
struct slot_guard {
    slot_pool* pool;
    std::shared_ptr<bool> engine_alive;
    ~slot_guard() {
        if (pool && *engine_alive) pool->give_back();
    }
};

}  // namespace

clock_source system_clock_source() {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    return clock_source{
        [] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
        },
        [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); },
    };
}

engine::engine(net::any_io_executor executor, net::ssl::context& tls, store::sync_store& store,
               engine_settings settings, config::secret token, clock_source clock, source_factory make_source)
    : executor_(executor),
      tls_(tls),
      clock_(std::move(clock)),
      make_source_(std::move(make_source)),
      current_(make_snapshot(std::move(settings), token)),
      tasks_(executor),
      lease_keeper_(executor),
      slots_(std::make_unique<slot_pool>(executor,
                                         static_cast<std::size_t>(std::max(1, current_->settings.sync.concurrency)))),
      health_(stored_health(store)),
      shares_work_(store.shares_work()),
      lease_renew_every_(store.lease_renew_every()),
      lease_span_(store.lease_span()),
      writer_(std::make_unique<store_writer>(executor, store)) {}

std::shared_ptr<const engine::snapshot> engine::make_snapshot(engine_settings settings, const config::secret& token) {
    std::shared_ptr<page_source> source;
    if (make_source_) {
        source = make_source_(settings, token);
    } else {
        source = std::make_shared<http_page_source>(executor_, tls_, settings.connection, token, settings.limits,
                                                    settings.retry.max_delay, clock_.now_ms);
    }
    return std::make_shared<const snapshot>(std::move(settings), std::move(source), clock_.uniform01);
}

std::int64_t engine::slice_limit(const snapshot& snap) const {
    const std::int64_t configured = snap.settings.sync.slice_incidents;
    return offset_limit_ ? std::min(configured, *offset_limit_) : configured;
}

void engine::learn_offset_limit(const config::pair& pair, std::int64_t skip, const error& refusal) {
    if (offset_limit_ && *offset_limit_ <= skip) return;
    offset_limit_ = skip;
    spdlog::warn(
        "{}: the API refused a page at skip={} ({}); from now on a slice holds at most {} incidents, so "
        "no read goes that deep (sync.slice_incidents is {})",
        pair_name(pair), skip, refusal.message, skip, current_->settings.sync.slice_incidents);
}

net::awaitable<error> engine::fail_slice(store::slice_report report, error e) {
    if (e.code != errc::cancelled) co_await record_failure(report, e);
    co_return e;
}

net::awaitable<void> engine::record_failure(store::slice_report report, error e) {
    report.moves_watermark = !range_.has_value();  // a resync's failure is not the pair's
    const std::int64_t now = clock_.now_ms();
    auto task = [report, e, now](store::sync_store& store) {
        return store.record_failure(report, e.message, now, e.code == errc::auth);
    };
    auto r = co_await writer_->call(std::move(task));
    if (!r && r.error().code != errc::cancelled)
        spdlog::error("{}: could not record the failure either: {}", pair_name(report.pair), r.error().message);
}

net::awaitable<result<void>> engine::settle(std::shared_ptr<store_writer::write_ticket> ticket,
                                            store::slice_report& report, std::shared_ptr<poll_state> poll) {
    auto written = co_await ticket->wait();
    if (!written) co_return make_error(errc::cancelled, "cancelled while the page was being written");
    if (!*written) co_return written->error();
    const store::upsert_counts& counts = **written;
    ++stats_.pages;
    stats_.incidents_seen += static_cast<std::uint64_t>(counts.seen);
    stats_.incidents_new += static_cast<std::uint64_t>(counts.inserted);
    stats_.incidents_changed += static_cast<std::uint64_t>(counts.changed);
    stats_.incidents_unchanged += static_cast<std::uint64_t>(counts.unchanged);
    ++report.pages;
    report.counts += counts;
    poll->incidents_read += counts.seen;
    poll->counts += counts;
    // Typed pages while most incidents are new or changed (a backfill);
    // untyped while most are unchanged (a re-read): the writer then types only
    // the few that changed, and the loop never builds the model for the rest.
    poll->mode =
        (counts.inserted + counts.changed) * 2 > counts.seen ? api::parse_mode::typed : api::parse_mode::untyped;
    co_return result<void>{};
}

net::awaitable<std::vector<result<fetched_page>>> engine::fetch_pages(config::pair pair, slice s,
                                                                      std::vector<std::int64_t> skips,
                                                                      std::shared_ptr<poll_state> poll,
                                                                      std::shared_ptr<const snapshot> snap,
                                                                      bool parse) {
    using op = decltype(net::co_spawn(executor_, std::declval<net::awaitable<result<fetched_page>>>(), net::deferred));
    std::vector<op> ops;
    ops.reserve(skips.size());
    if (auto leased = still_leased(pair); !leased) {
        co_return std::vector<result<fetched_page>>(skips.size(), leased.error());
    }
    for (const std::int64_t skip : skips) {
        fetch_context ctx{*snap->source, snap->settings.connection.endpoint, snap->backoff, clock_.now_ms, stats_,
                          poll->mode};
        const api::incidents_query query{pair, s.from_ms, s.to_ms, skip, snap->settings.page_size};
        ops.push_back(net::co_spawn(executor_, fetch_page_or_body(ctx, query, parse), net::deferred));
    }
    // All in flight at once (the source's limit decides how many really are).
    auto [order, exceptions, pages] = co_await net::experimental::make_parallel_group(std::move(ops))
                                          .async_wait(net::experimental::wait_for_all(), net::use_awaitable);
    (void)order;
    std::vector<result<fetched_page>> out;
    out.reserve(pages.size());
    for (std::size_t i = 0; i < pages.size(); ++i) {
        if (exceptions[i]) {
            out.push_back(make_error(errc::cancelled, "cancelled while fetching a page"));
            continue;
        }
        out.push_back(std::move(pages[i]));
    }
    co_return out;
}

net::awaitable<result<model::page>> engine::take_page(config::pair pair, slice s, std::int64_t skip,
                                                      result<fetched_page> fetched, std::shared_ptr<poll_state> poll,
                                                      std::shared_ptr<const snapshot> snap) {
    if (!fetched) co_return fetched.error();
    if (auto* page = std::get_if<model::page>(&*fetched)) co_return std::move(*page);
    auto parsed = api::parse_page(std::get<std::string>(*fetched), poll->mode);
    if (parsed) co_return std::move(*parsed);
    spdlog::warn("{} skip={}: the page fetched ahead does not parse ({}); fetching it again", pair_name(pair), skip,
                 parsed.error().message);
    ++stats_.retries;
    std::vector<std::int64_t> again(1, skip);
    auto refetched = co_await fetch_pages(pair, s, std::move(again), poll, snap, true);
    if (!refetched[0]) co_return refetched[0].error();
    co_return std::get<model::page>(std::move(*refetched[0]));
}

net::awaitable<result<void>> engine::settle_all(std::deque<std::shared_ptr<store_writer::write_ticket>> tickets,
                                                store::slice_report& report, std::shared_ptr<poll_state> poll) {
    result<void> outcome{};
    // Every ticket is waited for, even after a failure: none is left behind.
    for (auto& ticket : tickets) {
        auto written = co_await settle(ticket, report, poll);
        if (!written && outcome) outcome = written.error();
    }
    co_return outcome;
}

std::shared_ptr<engine::page_ahead> engine::fetch_ahead(config::pair pair, slice s, std::int64_t skip,
                                                        std::shared_ptr<poll_state> poll,
                                                        std::shared_ptr<const snapshot> snap) {
    auto ahead = std::make_shared<page_ahead>(executor_);
    if (auto leased = still_leased(pair); !leased) {
        ahead->arrived.set(leased.error());
        return ahead;
    }
    auto fetch = [](engine* self, config::pair p, slice sl, std::int64_t at, std::shared_ptr<poll_state> ps,
                    std::shared_ptr<const snapshot> sn, std::shared_ptr<page_ahead> out) -> net::awaitable<void> {
        fetch_context ctx{*sn->source, sn->settings.connection.endpoint, sn->backoff, self->clock_.now_ms, self->stats_,
                          ps->mode};
        const api::incidents_query query{p, sl.from_ms, sl.to_ms, at, sn->settings.page_size};
        try {
            out->arrived.set(co_await fetch_page_or_body(ctx, query, false));
        } catch (const boost::system::system_error&) {
            // Cancelled (a stop, or the walk no longer wants this offset).
            out->arrived.set(make_error(errc::cancelled, "cancelled while fetching a page"));
        }
    };
    ahead->task = tasks_.spawn(pair_name(pair) + " page", fetch(this, pair, s, skip, poll, snap, ahead));
    return ahead;
}

void engine::requested_pages::drop_all() {
    if (*engine_alive)
        for (auto& [key, p] : pages)
            if (!p->arrived.ready()) self->tasks_.cancel(p->task);
    pages.clear();
}

int engine::pages_to_keep_ahead(const std::deque<std::shared_ptr<store_writer::write_ticket>>& in_writer,
                                const snapshot& snap) const {
    if (snap.source->stats().average_rtt >= distant_rtt) return pages_ahead;
    // A near API: any page of the pair's still unwritten (the one just
    // handed over included: on loopback a page arrives faster than it is
    // written), or other pairs' pages filling half the writer's queue, and
    // the writer is the slower side. (Counting the page just handed over as
    // a backlog took 2 MiB more at 100k, pages waiting in memory, no faster.)
    const auto own_unwritten = static_cast<std::size_t>(
        std::count_if(in_writer.begin(), in_writer.end(), [](const auto& t) { return !t->ready(); }));
    const std::size_t others = writer_->queued_pages() - std::min(writer_->queued_pages(), own_unwritten);
    const bool writer_behind = own_unwritten > 0 || others * 2 >= writer_->max_queued_pages();
    return writer_behind ? backlogged_pages_ahead : pages_ahead;
}

net::awaitable<result<void>> engine::sync_slice(config::pair pair, slice s,
                                                std::shared_ptr<store_writer::ledger> ledger,
                                                std::shared_ptr<poll_state> poll, std::shared_ptr<const snapshot> snap,
                                                model::page first, std::optional<slice> next,
                                                requested_pages& next_first) {
    store::slice_report report{pair, s.from_ms, s.to_ms, clock_.now_ms(), 0, {}, 0, !range_.has_value()};
    page_walk walk(snap->settings.page_size);
    const std::int64_t read_before_slice = progress_.contains(pair) ? progress_[pair].read : 0;
    // Pages fetched ahead of the walk, by offset, each in flight on its own:
    // as the walk takes one, the next offset is requested, so a distant API
    // always has pages_ahead of this pair's requests going. The walk still
    // takes them one at a time, in order, and checks each page's id anchors:
    // when the walk asks for an offset that was not fetched ahead (the result
    // set moved), every page ahead is dropped (their requests cancelled) and
    // the walk goes on from where it says.
    requested_pages ahead{this, alive_, {}};
    auto given = std::make_shared<page_ahead>(executor_);
    given->arrived.set(fetched_page(std::move(first)));
    ahead.pages.emplace(0, std::move(given));
    std::int64_t last_count = 0;
    // Pages handed to the writer and not yet counted, oldest first. The
    // writer's queue bounds how many wait (submit_when_room).
    std::deque<std::shared_ptr<store_writer::write_ticket>> in_writer;
    for (;;) {
        const page_request req = walk.next();
        if (!ahead.pages.contains(req.skip)) ahead.drop_all();
        // Count the pages the writer has written, without waiting for it.
        while (!in_writer.empty() && in_writer.front()->ready()) {
            auto written = co_await settle(in_writer.front(), report, poll);
            in_writer.pop_front();
            if (!written) {
                (void)co_await settle_all(std::exchange(in_writer, {}), report, poll);
                co_return co_await fail_slice(report, written.error());
            }
        }
        // Keep the offsets a walk takes when nothing moves requested, up to
        // the last count the API gave.
        const auto keep = static_cast<std::size_t>(pages_to_keep_ahead(in_writer, *snap));
        std::int64_t skip = ahead.pages.empty() ? req.skip : ahead.pages.rbegin()->first + walk.step();
        for (; ahead.pages.size() < keep && (ahead.pages.empty() || skip < last_count); skip += walk.step())
            ahead.pages.emplace(skip, fetch_ahead(pair, s, skip, poll, snap));
        // Room left over at the slice's end: the pair's next slice's first
        // page goes out now (a round trip saved per slice on a distant API).
        if (next && next_first.pages.empty() && last_count > 0 && skip >= last_count && ahead.pages.size() < keep)
            next_first.pages.emplace(next->from_ms, fetch_ahead(pair, *next, 0, poll, snap));
        auto found = ahead.pages.find(req.skip);
        auto arrived = co_await found->second->arrived.wait();
        ahead.pages.erase(found);
        if (!arrived) arrived.emplace(make_error(errc::cancelled, "cancelled while fetching a page"));
        auto fetched = std::move(*arrived);
        auto page = co_await take_page(pair, s, req.skip, std::move(fetched), poll, snap);
        if (!page) {
            (void)co_await settle_all(std::exchange(in_writer, {}), report, poll);
            // A refusal past the first page may be the API's bound on offsets,
            // not a failure of the pair: the poll splits the slice instead (the
            // pages already written are upserts again when the parts re-read them).
            const errc code = page.error().code;
            if (req.skip > 0 && (code == errc::bad_request || code == errc::http_status)) {
                poll->refused_skip = req.skip;
                co_return page.error();
            }
            co_return co_await fail_slice(report, page.error());
        }
        last_count = page->count;
        // Spare CPU here while the writer thread is the limit (a backfill).
        for (auto& incident : page->incidents) incident.hashes = store::hashes_of(incident);
        // A plain vector, not a views::transform: clang 14 cannot compile that
        // with libstdc++ 12, and the fuzz build uses clang.
        std::vector<std::string_view> ids;
        ids.reserve(page->incidents.size() + page->untyped.size());
        for (const auto& incident : page->incidents) ids.push_back(incident.id);
        for (const auto& incident : page->untyped) ids.push_back(incident.id);
        const walk_state state = walk.on_page(page->count, ids);
        if (auto it = progress_.find(pair); it != progress_.end()) {
            if (walk.requests() == 1) it->second.window_count += page->count;
            it->second.read = read_before_slice + walk.distinct_read();
        }
        stats_.drift_corrections += static_cast<std::uint64_t>(walk.drift_corrections() - report.drift_corrections);
        report.drift_corrections = walk.drift_corrections();

        if (state == walk_state::fetching) {
            in_writer.push_back(
                co_await writer_->submit_when_room(ledger, std::move(*page), clock_.now_ms(), std::nullopt));
            continue;
        }
        stats_.incidents_read += static_cast<std::uint64_t>(walk.distinct_read());
        // The slice ends with this page. Its sync_runs row counts every page,
        // so the pages still with the writer are counted first.
        if (auto written = co_await settle_all(std::exchange(in_writer, {}), report, poll); !written)
            co_return co_await fail_slice(report, written.error());
        const bool complete = state == walk_state::complete;
        std::optional<store::slice_report> finish;
        if (complete) finish = report;
        in_writer.push_back(
            co_await writer_->submit_when_room(ledger, std::move(*page), clock_.now_ms(), std::move(finish)));
        if (auto written = co_await settle_all(std::exchange(in_writer, {}), report, poll); !written)
            co_return co_await fail_slice(report, written.error());
        if (complete) {
            spdlog::debug("{}: slice {} .. {} done: {} pages, {} incidents ({} new, {} changed), {} drift corrections",
                          pair_name(pair), util::format_iso8601_ms(s.from_ms), util::format_iso8601_ms(s.to_ms),
                          report.pages, report.counts.seen, report.counts.inserted, report.counts.changed,
                          report.drift_corrections);
            co_return result<void>{};
        }
        const error e = make_error(errc::transport, std::string(walk.failure()));
        co_return co_await fail_slice(report, e);
    }
}

net::awaitable<pair_status> engine::sync_pair(config::pair pair) {
    // When the last pair that is polling or waiting to finishes, the loop is
    // idle until the next poll: build the indexes a first backfill left out,
    // and checkpoint, then; not in the middle of a backfill. (Counted before
    // the slot is taken: a pair waiting for one is not idle time.)
    ++active_pairs_;
    progress_[pair] = pair_progress{};
    progress_[pair].poll_started_ms = clock_.now_ms();
    struct when_idle {
        engine* self;
        config::pair pair;
        std::shared_ptr<bool> engine_alive;
        ~when_idle() {
            if (!*engine_alive) return;
            self->progress_.erase(pair);
            if (self->polls_changed_) self->polls_changed_();
            // Not on the way out: a stop should not build indexes (the next
            // start does) or checkpoint behind another process's lock.
            if (--self->active_pairs_ == 0 && !self->stopping_)
                self->writer_->post([](store::sync_store& s) { s.on_idle(); });
        }
    } idle_work{this, pair, alive_};
    if (polls_changed_) polls_changed_();
    // A pair another daemon held when this one last looked is claimed
    // without a slot, and polled at once when the claim succeeds: a pair
    // taken over from a daemon that died must not wait for this daemon's own
    // backfills to end (database.lease_ttl bounds a takeover), and a refused
    // claim needs no slot either.
    slot_guard slot{nullptr, alive_};
    if (!(shares_work_ && leased_elsewhere_.contains(pair))) {
        // Take a concurrency slot; waits while `sync.concurrency` pairs are
        // fetching, or until keep_leases() sees another daemon holds the pair.
        switch (co_await slots_->take(pair)) {
            case slot_pool::wait_result::cancelled:
                co_return pair_status::cancelled;
            case slot_pool::wait_result::left:
                co_return pair_status::elsewhere;
            case slot_pool::wait_result::taken:
                break;
        }
        slot.pool = slots_.get();
    }
    // Claimed once a slot is free, not while queued for one: a pair waiting
    // for a slot is not held, so another daemon with room may take it.
    if (shares_work_) {
        const pair_status claimed = co_await claim(pair);
        if (claimed != pair_status::ok) co_return claimed;
    }
    struct busy_guard {
        engine* self;
        config::pair pair;
        std::shared_ptr<bool> engine_alive;
        ~busy_guard() {
            if (*engine_alive) self->claimed_busy_.erase(pair);
        }
    } busy{this, pair, alive_};
    if (shares_work_) claimed_busy_.insert(pair);

    const auto started = std::chrono::steady_clock::now();
    const pair_status status = co_await poll_slices(pair, current_);
    if (status != pair_status::cancelled) {
        const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
        record_outcome(pair, status, elapsed.count());
    }
    co_return status;
}

net::awaitable<pair_status> engine::claim(config::pair pair) {
    const std::size_t total = polled_pairs().size();
    const std::int64_t sent_ms = clock_.now_ms();
    // A named lambda: GCC 12 destroys a temporary one in a co_await twice.
    auto claim_it = [pair, total](store::sync_store& s) -> result<std::pair<bool, std::chrono::milliseconds>> {
        auto held = s.claim_pair(pair, total);
        if (!held) return held.error();
        return std::pair{*held, s.claim_again_in()};
    };
    auto claimed = co_await writer_->call(std::move(claim_it));
    if (!claimed) {
        if (claimed.error().code == errc::cancelled) co_return pair_status::cancelled;
        spdlog::error("{}: {}", pair_name(pair), claimed.error().message);
        record_outcome(pair, pair_status::failed, 0);
        co_return pair_status::failed;
    }
    if (!claimed->first) {
        claim_again_in_[pair] = claimed->second;
        if (range_)
            spdlog::error(
                "{}: not re-read: another daemon sharing the database polls it (it holds the pair's lease); "
                "run resync where no daemon runs, or when this pair's daemon is stopped",
                pair_name(pair));
        else
            note_leased_elsewhere(pair);
        co_return pair_status::elsewhere;
    }
    if (leased_elsewhere_.erase(pair) > 0) spdlog::info("{}: this daemon holds the pair's lease now", pair_name(pair));
    lease_until_ms_[pair] = sent_ms + lease_span_.count();
    co_return pair_status::ok;
}

void engine::note_leased_elsewhere(const config::pair& pair) {
    if (leased_elsewhere_.insert(pair).second)
        spdlog::info("{}: polled by another daemon sharing the database (it holds the pair's lease)", pair_name(pair));
}

result<void> engine::still_leased(const config::pair& pair) const {
    if (!shares_work_) return {};
    const auto until = lease_until_ms_.find(pair);
    if (until != lease_until_ms_.end() && clock_.now_ms() < until->second) return {};
    return make_error(errc::database,
                      pair_name(pair) +
                          ": this daemon could not renew the pair's lease for database.lease_ttl (it was stopped, or "
                          "cut off from the database), so another daemon may poll it by now: no more requests for it "
                          "until it holds the lease again");
}

net::awaitable<void> engine::keep_leases() {
    net::steady_timer timer(executor_);
    for (;;) {
        timer.expires_after(lease_renew_every_);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || stopping_) co_return;
        std::vector<config::pair> busy(claimed_busy_.begin(), claimed_busy_.end());
        const std::size_t total = polled_pairs().size();
        const std::int64_t sent_ms = clock_.now_ms();
        // A named lambda: GCC 12 destroys a temporary one in a co_await twice.
        using held_elsewhere = std::vector<std::pair<config::pair, std::chrono::milliseconds>>;
        struct renewal {
            std::vector<config::pair> held;
            held_elsewhere queued_held_elsewhere;
        };
        auto renew = [busy = std::move(busy), total,
                      queued = slots_->waiting()](store::sync_store& s) -> result<renewal> {
            renewal r{s.renew_leases(busy, total), {}};
            r.queued_held_elsewhere = s.held_elsewhere(queued);
            return r;
        };
        auto renewed = co_await writer_->call(std::move(renew));
        if (!renewed || stopping_) continue;
        // Only the renewed ones move: a pair claimed while this was on its
        // way keeps its claim's time, and one lost lapses by itself.
        for (const auto& pair : renewed->held) lease_until_ms_[pair] = sent_ms + lease_span_.count();
        // A pair queued for a slot that another daemon holds leaves the
        // queue: it would only be refused there, and when that daemon dies
        // the pair is to be taken over when its lease lapses (claimed then
        // without a slot), not when this daemon's own polls end.
        for (const auto& [pair, lapses_in] : renewed->queued_held_elsewhere) {
            if (!slots_->leave(pair)) continue;
            claim_again_in_[pair] = lapses_in;
            note_leased_elsewhere(pair);
        }
    }
}

void engine::record_outcome(const config::pair& pair, pair_status status, double seconds) {
    stats_.observe_duration(seconds);
    auto& h = health_[pair];
    h.auth_failing = status == pair_status::auth_failed;
    if (status == pair_status::ok)
        h.last_success_ms = clock_.now_ms();
    else
        h.last_error_ms = clock_.now_ms();
    last_status_[pair] = status;
    if (pair_done_) pair_done_(pair, status);
}

net::awaitable<pair_status> engine::poll_slices(config::pair pair, std::shared_ptr<const snapshot> snap) {
    auto read_watermark = [pair](store::sync_store& s) { return s.watermark(pair); };
    auto watermark = co_await writer_->call(std::move(read_watermark));
    if (!watermark) {
        if (watermark.error().code == errc::cancelled) co_return pair_status::cancelled;
        spdlog::error("{}: {}", pair_name(pair), watermark.error().message);
        co_return pair_status::failed;
    }
    if (*watermark) health_[pair].watermark_ms = **watermark;
    // Windows no longer than sync.max_window, each split by time while a part
    // holds more than sync.slice_incidents (the API's count on its first page
    // says so), so a window with few incidents costs one request and a
    // backfill still commits and resumes slice by slice.
    const auto windows = range_ ? split_by_time(*range_, snap->settings.sync.max_window)
                                : plan_slices(*watermark, clock_.now_ms(), snap->settings.sync);
    if (windows.empty()) co_return pair_status::ok;
    std::deque<slice> todo(windows.begin(), windows.end());

    pair_status status = pair_status::ok;
    bool database_busy = false;  // the poll failed only because the database was busy
    const auto started = std::chrono::steady_clock::now();
    const auto ledger = writer_->open_ledger(pair);
    // A pair's first sync is a backfill: start typed (see settle()).
    const auto poll = std::make_shared<poll_state>();
    poll->mode = *watermark ? api::parse_mode::untyped : api::parse_mode::typed;
    std::optional<std::int64_t> submitted_to_ms;  // the last slice handed to the writer complete
    int slices_done = 0;
    requested_pages next_first{this, alive_, {}};  // by from_ms: next_first_slice's first page
    slice next_first_slice{0, 0};
    while (!todo.empty()) {
        const slice s = todo.front();
        todo.pop_front();
        if (auto it = progress_.find(pair); it != progress_.end()) {
            it->second.slices = slices_done + 1 + static_cast<int>(todo.size());
            it->second.slice = slices_done + 1;
        }
        // The slice's first page: requested while the slice before was
        // walked, or now.
        std::shared_ptr<page_ahead> first_request;
        if (auto it = next_first.pages.find(s.from_ms); it != next_first.pages.end() && next_first_slice == s) {
            first_request = it->second;
            next_first.pages.erase(it);
        }
        next_first.drop_all();  // requested for a slice that was split meanwhile
        if (!first_request) first_request = fetch_ahead(pair, s, 0, poll, snap);
        auto arrived = co_await first_request->arrived.wait();
        if (!arrived) arrived.emplace(make_error(errc::cancelled, "cancelled while fetching a page"));
        auto first = co_await take_page(pair, s, 0, std::move(*arrived), poll, snap);
        result<void> r = result<void>{};
        if (!first) {
            const store::slice_report report{pair, s.from_ms, s.to_ms, clock_.now_ms(), 0, {}, 0};
            r = co_await fail_slice(report, first.error());
        } else {
            auto& first_page = *first;
            const std::int64_t count = first_page.count;
            const auto parts = split_by_count(s, count, slice_limit(*snap));
            if (parts.size() > 1) {
                // Too many for one slice: its parts go first, oldest first.
                todo.insert(todo.begin(), parts.begin(), parts.end());
                continue;
            }
            poll->refused_skip = 0;
            // The walk requests the next slice's first page when it has no
            // page of its own left to request (see sync_slice).
            std::optional<slice> next;
            if (!todo.empty()) next = next_first_slice = todo.front();
            r = co_await sync_slice(pair, s, ledger, poll, snap, std::move(first_page), next, next_first);
            if (!r && poll->refused_skip > 0) {
                // A page deep in the slice was refused (see sync_slice): a 4xx
                // lowers the offset limit for every later slice; a server error
                // that outlived its retries only splits this one. Parts hold
                // fewer incidents than the refused offset, so their walks stay
                // above it. A slice that cannot be split further fails.
                const error refusal = r.error();
                if (refusal.code == errc::bad_request) learn_offset_limit(pair, poll->refused_skip, refusal);
                const auto smaller = split_by_count(s, count, std::min(poll->refused_skip, slice_limit(*snap)));
                if (smaller.size() > 1) {
                    spdlog::info("{}: skip={} refused ({}); reading slice {} .. {} in {} parts", pair_name(pair),
                                 poll->refused_skip, refusal.message, util::format_iso8601_ms(s.from_ms),
                                 util::format_iso8601_ms(s.to_ms), smaller.size());
                    todo.insert(todo.begin(), smaller.begin(), smaller.end());
                    continue;
                }
                const store::slice_report report{pair, s.from_ms, s.to_ms, clock_.now_ms(), 0, {}, 0};
                r = co_await fail_slice(report, refusal);
            }
        }
        if (r) {
            ++slices_done;
            submitted_to_ms = s.to_ms;
            continue;
        }
        switch (r.error().code) {
            case errc::cancelled:
                status = pair_status::cancelled;
                break;
            case errc::auth: {
                status = pair_status::auth_failed;
                const log::scoped_fields fields({log::scoped_fields::text("pair", pair_name(pair)),
                                                 log::scoped_fields::text("status", "auth_failed"),
                                                 log::scoped_fields::text("error", r.error().message)});
                spdlog::error(
                    "{}: authentication failed: {}. Check the token (HUMAN_API_TOKEN, api.token_file, "
                    "$CREDENTIALS_DIRECTORY/human-api-token or /run/secrets/human_api_token){}",
                    pair_name(pair), r.error().message, retry_hint_);
                break;
            }
            default: {
                status = pair_status::failed;
                database_busy = r.error().code == errc::database_busy;
                const log::scoped_fields fields({log::scoped_fields::text("pair", pair_name(pair)),
                                                 log::scoped_fields::text("status", "failed"),
                                                 log::scoped_fields::number("slice_from", s.from_ms),
                                                 log::scoped_fields::number("slice_to", s.to_ms),
                                                 log::scoped_fields::text("error", r.error().message)});
                spdlog::error("{}: sync failed, watermark kept at {}: {}", pair_name(pair),
                              *watermark ? util::format_iso8601_ms(**watermark) : "(none)", r.error().message);
            }
        }
        break;
    }
    if (status != pair_status::cancelled) {
        // Written is not yet durable: wait for the commit before saying so.
        auto durable = co_await writer_->flush(ledger);
        if (!durable && durable.error().code == errc::cancelled) {
            status = pair_status::cancelled;
        } else if (!durable) {
            if (status == pair_status::ok) {
                spdlog::error("{}: sync failed, watermark kept at {}: {}", pair_name(pair),
                              *watermark ? util::format_iso8601_ms(**watermark) : "(none)", durable.error().message);
                status = pair_status::failed;
                database_busy = durable.error().code == errc::database_busy;
                const slice& last = windows.back();
                const store::slice_report lost{pair, last.from_ms, last.to_ms, clock_.now_ms(), 0, {}, 0};
                co_await record_failure(lost, durable.error());
            }
        } else if (submitted_to_ms && !range_) {
            health_[pair].watermark_ms = *submitted_to_ms;
        }
    }
    // A busy database (a deadlock with another daemon, a lock or a
    // serialization failure: nothing wrong with the data) is tried again
    // within seconds (1, 2, 4 ... s), not at the next interval.
    if (status == pair_status::failed && database_busy)
        ++busy_streak_[pair];
    else
        busy_streak_.erase(pair);
    if (status == pair_status::ok) {
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        const std::int64_t distinct = progress_.contains(pair) ? progress_[pair].read : poll->incidents_read;
        const auto& poll_counts = poll->counts;
        const auto changed = poll_counts.inserted + poll_counts.changed;
        const log::scoped_fields fields(
            {log::scoped_fields::text("pair", pair_name(pair)), log::scoped_fields::text("status", "ok"),
             log::scoped_fields::number("slice_from", windows.front().from_ms),
             log::scoped_fields::number("slice_to", windows.back().to_ms), log::scoped_fields::number("read", distinct),
             log::scoped_fields::number("new", poll_counts.inserted),
             log::scoped_fields::number("changed", poll_counts.changed),
             log::scoped_fields::number("unchanged", std::max<std::int64_t>(0, distinct - changed))});
        spdlog::info("{}: synced {} slice(s) up to {}: {} incidents read ({} new, {} changed, {} unchanged) in {} ms",
                     pair_name(pair), slices_done, util::format_iso8601_ms(windows.back().to_ms), distinct,
                     poll_counts.inserted, poll_counts.changed, std::max<std::int64_t>(0, distinct - changed),
                     elapsed.count());
    }
    co_return status;
}

std::map<config::pair, pair_health> engine::stored_health(store::sync_store& store) {
    std::map<config::pair, pair_health> out;
    auto states = store.sync_states();
    if (!states) {
        spdlog::warn("could not read the stored sync state (health starts empty): {}", states.error().message);
        return out;
    }
    for (const auto& st : *states) {
        auto& h = out[st.pair];
        h.last_success_ms = st.last_success_ms;
        h.last_error_ms = st.last_error_ms;
        h.watermark_ms = st.watermark_ms;
        h.auth_failing = st.auth_failing;
    }
    return out;
}

void engine::spawn_single_poll(const config::pair& pair) {
    if (!single_pass_->started.insert(pair).second) return;
    tasks_.spawn(pair_name(pair),
                 [](engine* self, config::pair p, std::shared_ptr<single_pass> pass) -> net::awaitable<void> {
                     pass->results[p] = co_await self->sync_pair(p);
                 }(this, pair, single_pass_));
}

net::awaitable<bool> engine::run_once() {
    single_pass_ = std::make_shared<single_pass>();
    discovery_failed_ = false;
    for (const auto& pair : polled_pairs()) spawn_single_poll(pair);
    if (current_->settings.sync.discover) tasks_.spawn("discovery", discover_for_single_pass());
    co_await polls_with_leases_kept();
    const auto pass = std::move(single_pass_);
    bool all_ok = !discovery_failed_ && pass->results.size() == pass->started.size();
    // A pair another daemon polls is not this pass's to poll; but a resync
    // (range_) that could not re-read it did not do what it was asked.
    for (const auto& [pair, status] : pass->results)
        all_ok = all_ok && (status == pair_status::ok || (status == pair_status::elsewhere && !range_));
    co_return all_ok;
}

net::awaitable<void> engine::poll_forever(config::pair pair) {
    net::steady_timer timer(executor_);
    for (;;) {
        const pair_status status = co_await sync_pair(pair);
        if (status == pair_status::cancelled || stopping_) co_return;
        // Jitter keeps pairs from moving in lock-step against the API. A pair
        // another daemon holds is tried again three times per lease renewal
        // (a ninth of database.lease_ttl), and right after its lease lapses
        // when that comes sooner, so that it is taken over at once when that
        // daemon died (it would have renewed the lease before).
        auto interval = current_->settings.sync.interval;
        if (const auto busy = busy_streak_.find(pair); busy != busy_streak_.end())
            interval = std::min<std::chrono::milliseconds>(interval, busy_retry_delay(busy->second));
        auto jitter_span = interval / 10;
        if (status == pair_status::elsewhere) {
            interval = std::min<std::chrono::milliseconds>(interval, lease_renew_every_ / 3);
            const auto lapses = claim_again_in_[pair];
            if (lapses.count() > 0) interval = std::min(interval, lapses + std::chrono::milliseconds(20));
            jitter_span = std::min<std::chrono::milliseconds>(interval / 10, std::chrono::milliseconds(20));
        }
        const auto jitter = std::chrono::milliseconds(
            static_cast<std::int64_t>(clock_.uniform01() * static_cast<double>(jitter_span.count())));
        timer.expires_after(interval + jitter);
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec || stopping_) co_return;
    }
}

void engine::start_pair_loop(const config::pair& pair) {
    pair_tasks_[pair] = tasks_.spawn(pair_name(pair), poll_forever(pair));
}

net::awaitable<void> engine::run() {
    polling_forever_ = true;
    for (const auto& pair : polled_pairs()) start_pair_loop(pair);
    restart_discovery();
    co_await polls_with_leases_kept();
}

net::awaitable<void> engine::polls_with_leases_kept() {
    // A single pass's backfill may last longer than one lease, like run().
    if (shares_work_) lease_keeper_.spawn("leases", keep_leases());
    co_await tasks_.wait_all();
    lease_keeper_.cancel_all();
    co_await lease_keeper_.wait_all();
}

std::map<config::pair, pair_health> engine::health() const {
    std::map<config::pair, pair_health> out;
    for (const auto& p : polled_pairs()) {
        if (leased_elsewhere_.contains(p)) continue;
        auto it = health_.find(p);
        out[p] = it == health_.end() ? pair_health{} : it->second;
        // Polling (or queued for a slot) is what progress_ holds: one record.
        if (auto polling = progress_.find(p); polling != progress_.end())
            out[p].poll_started_ms = polling->second.poll_started_ms;
    }
    return out;
}

engine::~engine() { *alive_ = false; }

void engine::stop() {
    stopping_ = true;
    tasks_.cancel_all();
    lease_keeper_.cancel_all();
}

net::awaitable<void> engine::drain() {
    co_await writer_->call([](store::sync_store&) -> result<void> { return {}; });
    // No request follows: the loop need not wait out places held for
    // requests given up (a stop gives up every request in flight).
    current_->source->forget_given_up_requests();
}

void engine::interrupt_writes() {
    stopping_ = true;
    writer_->interrupt();
    tasks_.cancel_all();
    lease_keeper_.cancel_all();
}

void engine::reconfigure(engine_settings settings, config::secret token) {
    settings.sync.concurrency = current_->settings.sync.concurrency;  // the slot pool is sized at start
    if (!polling_forever_) {
        // A single pass (run_once) polls the pairs it started with; the new
        // settings apply to a later pass of this engine, if any.
        current_ = make_snapshot(std::move(settings), token);
        select_discovered();
        return;
    }
    // Polls running now keep the snapshot they started with; the next ones take this.
    current_ = make_snapshot(std::move(settings), token);
    select_discovered();
    apply_pairs("the configuration");
    if (!stopping_) restart_discovery();
}

}  // namespace isync::sync
