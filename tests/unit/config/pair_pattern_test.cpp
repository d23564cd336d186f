#include "config/pair_pattern.hpp"

#include <gtest/gtest.h>

using isync::config::pair;
using isync::config::pair_matches;
using isync::config::pair_pattern_problem;
using isync::config::pair_selected;

TEST(PairPattern, APatternIsOneAppGlobAndOneDomainGlob) {
    EXPECT_FALSE(pair_pattern_problem("PXabc123/*"));
    EXPECT_FALSE(pair_pattern_problem("*/*.example.com"));
    EXPECT_FALSE(pair_pattern_problem("PX[ab]?/shop.example"));
    EXPECT_TRUE(pair_pattern_problem("PXabc123"));
    EXPECT_TRUE(pair_pattern_problem("PXabc123/a/b"));
    EXPECT_TRUE(pair_pattern_problem("/example.com"));
    EXPECT_TRUE(pair_pattern_problem("PXabc123/"));
    EXPECT_TRUE(pair_pattern_problem(""));
}

TEST(PairPattern, TheAppSideIsCaseSensitiveTheDomainSideIsNot) {
    const pair p{"PXabc123", "Shop.Example.com"};
    EXPECT_TRUE(pair_matches("PXabc123/shop.example.com", p));
    EXPECT_TRUE(pair_matches("PX*/*.EXAMPLE.COM", p));
    EXPECT_FALSE(pair_matches("pxabc123/shop.example.com", p));
    EXPECT_FALSE(pair_matches("PXabc123/example.com", p));  // no implicit subdomains
    EXPECT_FALSE(pair_matches("PXabc12/*", p));             // a glob matches whole names
    EXPECT_TRUE(pair_matches("PXabc12?/*", p));
}

TEST(PairPattern, IncludeNarrowsAndExcludeWins) {
    const pair shop{"PXa", "shop.example"};
    const pair staging{"PXa", "staging.example"};
    const pair other{"PXb", "shop.example"};
    EXPECT_TRUE(pair_selected(shop, {}, {}));
    EXPECT_TRUE(pair_selected(shop, {"PXa/*"}, {}));
    EXPECT_FALSE(pair_selected(other, {"PXa/*"}, {}));
    EXPECT_TRUE(pair_selected(other, {"PXa/*", "*/shop.*"}, {}));
    EXPECT_FALSE(pair_selected(staging, {"PXa/*"}, {"*/staging.*"}));
    EXPECT_FALSE(pair_selected(staging, {}, {"*/staging.*"}));
    EXPECT_TRUE(pair_selected(shop, {}, {"*/staging.*"}));
}
