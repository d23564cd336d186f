#include "ops/progress_file.hpp"

#include <gtest/gtest.h>

using isync::config::pair;
using isync::ops::daemon_progress;
using isync::ops::parse_progress;
using isync::ops::render_progress;

TEST(ProgressFile, RoundTripsWhatIsPolledNowAndEveryPairPolled) {
    daemon_progress p;
    p.pid = 42;
    p.updated_ms = 1'700'000'000'000;
    p.pairs[{"PXa", "a.example"}] = {1'699'999'990'000, 2, 5, 1200, 4000};
    p.polled = std::vector<pair>{{"PXa", "a.example"}, {"PXb", "b.example"}};
    const auto back = parse_progress(render_progress(p));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->pid, 42);
    EXPECT_EQ(back->updated_ms, p.updated_ms);
    ASSERT_EQ(back->pairs.size(), 1u);
    EXPECT_EQ(back->pairs.begin()->second.read, 1200);
    EXPECT_EQ(back->polled, p.polled);
}

TEST(ProgressFile, AFileWithoutThePolledListReadsAsUnknownNotEmpty) {
    const auto old = parse_progress(R"({"pid":1,"updated_ms":2,"pairs":[]})");
    ASSERT_TRUE(old) << old.error().message;
    EXPECT_FALSE(old->polled.has_value());
    EXPECT_FALSE(parse_progress(R"({"pid":1,"updated_ms":2,"pairs":[],"polled":{}})"));
    EXPECT_FALSE(parse_progress(R"({"pid":1,"updated_ms":2,"pairs":[],"polled":[{"app_id":"PXa"}]})"));
}
