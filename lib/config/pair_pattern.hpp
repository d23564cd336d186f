#pragma once
// Patterns that pick discovered pairs (`sync.include`, `sync.exclude`):
// `APP/DOMAIN`, each side a shell glob (`*`, `?`, `[...]`), e.g.
// `PXabc123/*`, `*/*.example.com`. The app id side matches case-sensitively,
// the domain side ignoring case (DNS names do).

#include "config/config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace isync::config {

// Why `pattern` is not an `APP/DOMAIN` glob, or nullopt when it is.
std::optional<std::string> pair_pattern_problem(std::string_view pattern);

bool pair_matches(std::string_view pattern, const pair& p);

// Whether discovery polls `p`: it matches an include pattern (or there are
// none) and no exclude pattern.
bool pair_selected(const pair& p, const std::vector<std::string>& include, const std::vector<std::string>& exclude);

}  // namespace isync::config
