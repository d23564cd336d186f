// The paging state machine against a model of GET /v1/incidents whose result
// set changes between requests. The model is the oracle: at the end, every
// incident still in the window must have been returned by some page, unless
// the walk said it failed.

#include "sync/page_walk.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using isync::sync::page_request;
using isync::sync::page_walk;
using isync::sync::walk_state;

namespace {

struct page {
    std::int64_t count = 0;
    std::vector<std::string> ids;
};

// One slice [window_from, window_to) of the incident list, ordered by
// last_seen descending (id breaks ties), answering skip/take like the API:
// the slice of that order and the total count.
class fake_incidents {
public:
    static constexpr std::int64_t window_from = 1'000'000;
    static constexpr std::int64_t window_to = 2'000'000;
    static constexpr std::int64_t now = 3'000'000;

    // `n` incidents in the window, i0000 newest; last_seen 10 apart so an
    // incident can be placed between any two.
    explicit fake_incidents(std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) add(id(i), last_seen_of(i));
    }

    static std::string id(std::int64_t i) {
        std::string s = std::to_string(i);
        return "i" + std::string(s.size() < 4 ? 4 - s.size() : 0, '0') + s;
    }
    static std::int64_t last_seen_of(std::int64_t i) { return window_to - 10 * (i + 1); }

    void add(const std::string& id, std::int64_t last_seen) {
        if (auto it = items_.find(id); it != items_.end()) order_.erase({-it->second, id});
        items_[id] = last_seen;
        order_.insert({-last_seen, id});
    }
    // Seen again: its last_seen moves to now, past the window's fixed end.
    void seen_again(const std::string& id) { add(id, now); }
    // paging.count claims this many more incidents than the server serves.
    void overstate_count_by(std::int64_t n) { overstated_by_ = n; }
    // Applied to the window's order on every request (an unstable sort).
    void set_reorder(std::function<void(std::vector<std::string>&)> f) { reorder_ = std::move(f); }

    // The incidents in the window now, in the server's order.
    std::vector<std::string> window() const {
        std::vector<std::string> out;
        // order_ is keyed by (-last_seen, id): newest first, id breaking ties.
        for (auto it = order_.lower_bound({-window_to + 1, std::string()}); it != order_.end() && -it->first >= window_from;
             ++it)
            out.push_back(it->second);
        return out;
    }

    page answer(page_request r) const {
        std::vector<std::string> all = window();
        if (reorder_) reorder_(all);
        page p;
        p.count = static_cast<std::int64_t>(all.size()) + overstated_by_;
        for (std::int64_t i = r.skip; i < r.skip + r.take && i < static_cast<std::int64_t>(all.size()); ++i)
            p.ids.push_back(all[static_cast<std::size_t>(i)]);
        return p;
    }

private:
    std::map<std::string, std::int64_t> items_;  // id -> last_seen
    std::set<std::pair<std::int64_t, std::string>> order_;  // (-last_seen, id)
    std::int64_t overstated_by_ = 0;
    std::function<void(std::vector<std::string>&)> reorder_;
};

struct walk_outcome {
    walk_state state = walk_state::fetching;
    std::set<std::string> returned;  // every id any page held
    std::vector<std::int64_t> skips;  // the skip of each request, in order
};

// Feeds `walk` from `server` until it stops fetching (or `max_requests`, so a
// walk that never ends cannot hang the test). `between(n)` runs before the
// n-th request for n >= 1: between every two requests.
walk_outcome drive(page_walk& walk, fake_incidents& server,
                   const std::function<void(std::int64_t)>& between = {}, std::int64_t max_requests = 100'000) {
    walk_outcome out;
    for (std::int64_t n = 0; walk.state() == walk_state::fetching && n < max_requests; ++n) {
        if (n > 0 && between) between(n);
        const page_request r = walk.next();
        const page p = server.answer(r);
        out.skips.push_back(r.skip);
        out.returned.insert(p.ids.begin(), p.ids.end());
        walk.on_page(p.count, p.ids);
    }
    out.state = walk.state();
    return out;
}

// Every incident still in the window was returned by some page.
::testing::AssertionResult none_missed(const fake_incidents& server, const walk_outcome& out) {
    std::vector<std::string> missed;
    for (const auto& id : server.window())
        if (!out.returned.count(id)) missed.push_back(id);
    if (missed.empty()) return ::testing::AssertionSuccess();
    auto f = ::testing::AssertionFailure();
    f << missed.size() << " incident(s) still in the window were never returned:";
    for (std::size_t i = 0; i < missed.size() && i < 10; ++i) f << ' ' << missed[i];
    return f;
}

const char* name(walk_state s) {
    switch (s) {
    case walk_state::fetching: return "fetching";
    case walk_state::complete: return "complete";
    case walk_state::failed: return "failed";
    }
    return "?";
}

}  // namespace

// ---------------------------------------------------------------- no drift

TEST(PageWalk, WithoutDriftReadsCeilNOverTakePagesInOrder) {
    struct shape {
        std::int64_t n;
        int take;
    };
    for (const shape s : {shape{95, 10}, shape{1, 50}, shape{49, 50}, shape{51, 50}, shape{500, 7}, shape{3, 1}}) {
        SCOPED_TRACE(testing::Message() << "n=" << s.n << " take=" << s.take);
        fake_incidents server(s.n);
        page_walk walk(s.take);
        const auto out = drive(walk, server);
        const std::int64_t pages = (s.n + s.take - 1) / s.take;
        EXPECT_EQ(out.state, walk_state::complete);
        EXPECT_EQ(walk.requests(), pages);
        ASSERT_EQ(static_cast<std::int64_t>(out.skips.size()), pages);
        for (std::int64_t i = 0; i < pages; ++i) EXPECT_EQ(out.skips[static_cast<std::size_t>(i)], i * s.take);
        EXPECT_EQ(walk.drift_corrections(), 0);
        EXPECT_EQ(walk.rewalks(), 0);
        EXPECT_EQ(static_cast<std::int64_t>(out.returned.size()), s.n);
        EXPECT_TRUE(none_missed(server, out));
        EXPECT_TRUE(walk.failure().empty());
    }
}

TEST(PageWalk, EmptyWindowIsOneRequestAndComplete) {
    fake_incidents server(0);
    page_walk walk(20);
    EXPECT_EQ(walk.state(), walk_state::fetching);
    EXPECT_EQ(walk.next().skip, 0);
    EXPECT_EQ(walk.next().take, 20);
    const auto out = drive(walk, server);
    EXPECT_EQ(out.state, walk_state::complete);
    EXPECT_EQ(walk.requests(), 1);
    EXPECT_EQ(walk.drift_corrections(), 0);
}

TEST(PageWalk, CountThatIsAMultipleOfTakeNeedsNoTrailingEmptyPage) {
    fake_incidents server(30);
    page_walk walk(10);
    const auto out = drive(walk, server);
    EXPECT_EQ(out.state, walk_state::complete);
    EXPECT_EQ(out.skips, (std::vector<std::int64_t>{0, 10, 20}));
    EXPECT_EQ(out.returned.size(), 30u);
}

TEST(PageWalk, TakeBelowOneIsTreatedAsOne) {
    fake_incidents server(3);
    page_walk walk(0);
    EXPECT_EQ(walk.next().take, 1);
    const auto out = drive(walk, server, {}, 100);
    EXPECT_EQ(out.state, walk_state::complete);
    EXPECT_EQ(out.skips, (std::vector<std::int64_t>{0, 1, 2}));
}

// ------------------------------------------------- empty page before count

TEST(PageWalk, EmptyPageBeforeCountEndsTheWalkAndTheShortfallRewalksThenFails) {
    fake_incidents server(20);
    server.overstate_count_by(10);  // count 30, but only 20 are ever served
    page_walk walk(10, /*max_rewalks=*/3);

    // First walk: 0, 10, then an empty page at 20 ends it (no request at 30).
    for (int i = 0; i < 3; ++i) {
        const page p = server.answer(walk.next());
        walk.on_page(p.count, p.ids);
    }
    EXPECT_EQ(walk.state(), walk_state::fetching);
    EXPECT_EQ(walk.rewalks(), 1) << "20 distinct ids for a count of 30 must re-walk";
    EXPECT_EQ(walk.next().skip, 0);

    const auto out = drive(walk, server);
    EXPECT_EQ(out.state, walk_state::failed);
    EXPECT_EQ(walk.rewalks(), 3);
    EXPECT_EQ(walk.requests(), 4 * 3) << "four walks of three pages";
    EXPECT_EQ(out.skips, (std::vector<std::int64_t>{0, 10, 20, 0, 10, 20, 0, 10, 20}));
    EXPECT_FALSE(walk.failure().empty());
}

TEST(PageWalk, EmptyPageBeforeCountFailsAtOnceWithoutRewalks) {
    fake_incidents server(20);
    server.overstate_count_by(1);
    page_walk walk(10, /*max_rewalks=*/0);
    const auto out = drive(walk, server);
    EXPECT_EQ(out.state, walk_state::failed);
    EXPECT_EQ(walk.rewalks(), 0);
    EXPECT_EQ(walk.requests(), 3);
    EXPECT_FALSE(walk.failure().empty());
}

// -------------------------------------------------------------------- drift

namespace {

struct drift_case {
    std::int64_t n;
    int take;
    int removals_per_gap;  // incidents seen again (leaving the window) between two requests
    int additions_per_gap;  // new incidents, all outside the window
};

drift_case random_case(std::mt19937_64& rng) {
    drift_case c;
    c.n = std::uniform_int_distribution<std::int64_t>(0, 500)(rng);
    c.take = std::uniform_int_distribution<int>(7, 50)(rng);
    c.removals_per_gap = std::uniform_int_distribution<int>(1, 3)(rng);
    c.additions_per_gap = std::uniform_int_distribution<int>(0, 2)(rng);
    return c;
}

// Before every request but the first: `removals` random incidents of the
// window are seen again (move to now) and `additions` new ones arrive at now.
std::function<void(std::int64_t)> drift_between_every_request(fake_incidents& server, std::mt19937_64& rng,
                                                              const drift_case& c, std::int64_t& removed) {
    return [&server, &rng, c, &removed](std::int64_t n) {
        for (int k = 0; k < c.removals_per_gap; ++k) {
            const auto in = server.window();
            if (in.empty()) break;
            server.seen_again(in[std::uniform_int_distribution<std::size_t>(0, in.size() - 1)(rng)]);
            ++removed;
        }
        for (int k = 0; k < c.additions_per_gap; ++k)
            server.add("new" + std::to_string(n) + "-" + std::to_string(k), fake_incidents::now + n);
    };
}

}  // namespace

// Safety: whatever else happens, a walk that says complete read everything
// still in the window.
TEST(PageWalk, DriftBetweenEveryRequestNeverCompletesWithAnIncidentMissed) {
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        std::mt19937_64 rng(seed);
        const drift_case c = random_case(rng);
        SCOPED_TRACE(testing::Message() << "seed=" << seed << " n=" << c.n << " take=" << c.take
                                        << " removals/gap=" << c.removals_per_gap);
        fake_incidents server(c.n);
        page_walk walk(c.take);
        std::int64_t removed = 0;
        const auto out = drive(walk, server, drift_between_every_request(server, rng, c, removed));
        ASSERT_NE(out.state, walk_state::fetching);
        if (out.state == walk_state::complete) {
            EXPECT_TRUE(none_missed(server, out));
        }
    }
}

// Liveness: the contract's drift defence must still finish the slice when
// incidents keep leaving the window while it is paged.
TEST(PageWalk, DriftBetweenEveryRequestStillCompletesWithNothingMissed) {
    int not_complete = 0;
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        std::mt19937_64 rng(seed);
        const drift_case c = random_case(rng);
        SCOPED_TRACE(testing::Message() << "seed=" << seed << " n=" << c.n << " take=" << c.take
                                        << " removals/gap=" << c.removals_per_gap);
        fake_incidents server(c.n);
        page_walk walk(c.take);
        std::int64_t removed = 0;
        const auto out = drive(walk, server, drift_between_every_request(server, rng, c, removed));
        if (out.state != walk_state::complete) {
            if (++not_complete <= 5) {
                ADD_FAILURE() << "walk ended " << name(out.state) << " after " << walk.requests() << " requests ("
                              << walk.failure() << "); " << removed << " removed, " << server.window().size()
                              << " left in the window";
            }
            continue;
        }
        EXPECT_TRUE(none_missed(server, out));
        if (removed > 0) {
            EXPECT_GT(walk.drift_corrections(), 0);
        }
    }
    EXPECT_EQ(not_complete, 0) << "of 200 seeds";
}

// Drift now and then (each gap drifts with probability 1/4): the step-back
// must catch every shift, and the walk must finish.
TEST(PageWalk, OccasionalDriftCompletesWithNothingMissed) {
    for (std::uint64_t seed = 0; seed < 200; ++seed) {
        std::mt19937_64 rng(seed);
        const drift_case c = random_case(rng);
        SCOPED_TRACE(testing::Message() << "seed=" << seed << " n=" << c.n << " take=" << c.take);
        fake_incidents server(c.n);
        page_walk walk(c.take);
        std::int64_t removed = 0;
        auto drift = drift_between_every_request(server, rng, c, removed);
        const auto out = drive(walk, server, [&](std::int64_t n) {
            if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) drift(n);
        });
        EXPECT_EQ(out.state, walk_state::complete) << walk.failure();
        EXPECT_TRUE(none_missed(server, out));
        if (removed > 0 && out.skips.size() > 1) {
            EXPECT_GT(walk.drift_corrections(), 0);
        }
    }
}

TEST(PageWalk, RemovalsBeforeAndAfterTheOffsetAreCaughtBySteppingBack) {
    fake_incidents server(60);
    page_walk walk(10);
    const auto out = drive(walk, server, [&](std::int64_t n) {
        if (n != 2) return;  // after pages at 0 and 10, before the page at 20
        server.seen_again(fake_incidents::id(5));   // before the offset: shifts i0020, i0021 to 18, 19
        server.seen_again(fake_incidents::id(15));
        server.seen_again(fake_incidents::id(35));  // after the offset
        server.seen_again(fake_incidents::id(50));
    });
    EXPECT_EQ(out.state, walk_state::complete);
    EXPECT_TRUE(none_missed(server, out));
    EXPECT_TRUE(out.returned.count(fake_incidents::id(20)));
    EXPECT_TRUE(out.returned.count(fake_incidents::id(21)));
    ASSERT_GE(out.skips.size(), 4u);
    EXPECT_EQ(out.skips[2], 20);
    EXPECT_EQ(out.skips[3], 16) << "the count fell by 4: step back 4 places before the page just read";
    EXPECT_GE(walk.drift_corrections(), 1);
    EXPECT_EQ(walk.rewalks(), 0);
}

TEST(PageWalk, GrowingCountCarriesOnAndCountsACorrection) {
    fake_incidents server(25);
    page_walk walk(10);
    const auto out = drive(walk, server, [&](std::int64_t n) {
        if (n == 1) server.add("late", fake_incidents::last_seen_of(24) - 5);  // enters at the end of the window
    });
    EXPECT_EQ(out.state, walk_state::complete);
    EXPECT_TRUE(none_missed(server, out));
    EXPECT_EQ(out.skips, (std::vector<std::int64_t>{0, 10, 20}));
    EXPECT_EQ(walk.drift_corrections(), 1);
}

// -------------------------------------------- one leaves, one enters: count unchanged

// An unread incident leaves and a new one enters before the offset: the
// count does not move, the offsets shift by one, the new one is never read.
TEST(PageWalk, SwapWithUnchangedCountIsCaughtByTheDistinctIdsCheck) {
    fake_incidents server(30);
    page_walk walk(10);
    const auto out = drive(walk, server, [&](std::int64_t n) {
        if (n != 1) return;
        server.seen_again(fake_incidents::id(25));
        server.add("entered", fake_incidents::last_seen_of(3) - 5);  // between i0003 and i0004
    });
    EXPECT_GE(walk.rewalks(), 1);
    EXPECT_EQ(out.state, walk_state::complete);
    EXPECT_TRUE(none_missed(server, out));
    EXPECT_TRUE(out.returned.count("entered"));
}

// An incident already read leaves and a new one enters after the offset: the
// count does not move and the survivors shift left by one, so i0010 slips
// past the offset. The incident that left was read, so the distinct ids reach
// the count although i0010 never was.
TEST(PageWalk, SwapOfAnAlreadyReadIncidentIsNotReportedComplete) {
    fake_incidents server(30);
    page_walk walk(10);
    const auto out = drive(walk, server, [&](std::int64_t n) {
        if (n != 1) return;
        server.seen_again(fake_incidents::id(0));
        server.add("entered", fake_incidents::last_seen_of(29) - 5);  // the oldest in the window
    });
    EXPECT_GE(walk.rewalks(), 1) << "the count is unchanged but i0010 slipped past: the slice must be re-read";
    if (out.state == walk_state::complete) {
        EXPECT_TRUE(none_missed(server, out)) << "walk said complete";
    }
}

// Every place the leaving and the entering incident can have, at every gap.
TEST(PageWalk, NoSwapWithUnchangedCountEverEndsCompleteWithAnIncidentMissed) {
    constexpr std::int64_t n = 20;
    constexpr int take = 5;
    int complete_with_miss = 0;
    std::string first;
    for (std::int64_t gap = 1; gap <= 3; ++gap) {
        for (std::int64_t leaves = 0; leaves < n; ++leaves) {
            for (std::int64_t enters_after = 0; enters_after < n; ++enters_after) {
                if (enters_after == leaves) continue;
                fake_incidents server(n);
                page_walk walk(take);
                const auto out = drive(walk, server, [&](std::int64_t k) {
                    if (k != gap) return;
                    server.seen_again(fake_incidents::id(leaves));
                    server.add("entered", fake_incidents::last_seen_of(enters_after) - 5);
                });
                ASSERT_NE(out.state, walk_state::fetching);
                if (out.state == walk_state::complete && !none_missed(server, out)) {
                    if (++complete_with_miss == 1)
                        first = (testing::Message() << "before request " << gap << ", " << fake_incidents::id(leaves)
                                                   << " leaves and one enters after "
                                                   << fake_incidents::id(enters_after) << ": "
                                                   << none_missed(server, out).message())
                                    .GetString();
                }
            }
        }
    }
    EXPECT_EQ(complete_with_miss, 0) << "walks that ended complete with an incident missed; first: " << first;
}

// ------------------------------------------------------------ never ending

TEST(PageWalk, ServerThatNeverEndsFailsWithinABoundedNumberOfRequests) {
    // Always a full page of fresh ids; paging.count keeps one page ahead of skip.
    constexpr int take = 10;
    constexpr std::int64_t initial_count = 100;
    constexpr std::int64_t bound = 1000;  // 100 x the 10 pages the first count implies
    page_walk walk(take);
    std::int64_t requests = 0;
    std::int64_t count = initial_count;
    while (walk.state() == walk_state::fetching && requests < 10 * bound) {
        const page_request r = walk.next();
        std::vector<std::string> ids;
        for (int i = 0; i < take; ++i) ids.push_back("x" + std::to_string(r.skip + i));
        walk.on_page(count, ids);
        count += take;
        ++requests;
    }
    EXPECT_EQ(walk.state(), walk_state::failed) << "still " << name(walk.state()) << " after " << requests
                                                << " requests; paging.count is now " << count;
    EXPECT_LE(requests, bound);
    EXPECT_FALSE(walk.failure().empty());
}

TEST(PageWalk, ServerThatServesFullPagesPastAConstantCountStops) {
    // count says 25 but every page is full: the offset reaching the count ends it.
    page_walk walk(10);
    std::int64_t requests = 0;
    while (walk.state() == walk_state::fetching && requests < 1000) {
        const page_request r = walk.next();
        std::vector<std::string> ids;
        for (int i = 0; i < 10; ++i) ids.push_back("y" + std::to_string(r.skip + i));
        walk.on_page(25, ids);
        ++requests;
    }
    EXPECT_EQ(walk.state(), walk_state::complete);
    EXPECT_EQ(requests, 3);
}

// ----------------------------------------------------------- unstable order

// Every request returns the window in a new random order: no single walk can
// be trusted, but the ids seen across walks accumulate until they cover the count.
TEST(PageWalk, UnstableOrderStillCompletesAsIdsAccumulateAcrossWalks) {
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
        SCOPED_TRACE(testing::Message() << "seed=" << seed);
        std::mt19937_64 rng(seed);
        fake_incidents server(60);
        server.set_reorder([&rng](std::vector<std::string>& ids) { std::shuffle(ids.begin(), ids.end(), rng); });
        page_walk walk(10, /*max_rewalks=*/40);
        const auto out = drive(walk, server);
        EXPECT_EQ(out.state, walk_state::complete) << walk.failure();
        EXPECT_GE(walk.rewalks(), 1) << "a shuffled walk of 6 pages covering all 60 is vanishingly unlikely";
        EXPECT_TRUE(none_missed(server, out));
        EXPECT_EQ(out.returned.size(), 60u);
    }
}
