#include "config/pair_pattern.hpp"

#include <fnmatch.h>

#include <algorithm>

namespace isync::config {
namespace {

bool glob_matches(std::string_view glob, std::string_view text, int flags) {
    return ::fnmatch(std::string(glob).c_str(), std::string(text).c_str(), flags) == 0;
}

}  // namespace

std::optional<std::string> pair_pattern_problem(std::string_view pattern) {
    const auto slash = pattern.find('/');
    if (slash == std::string_view::npos)
        return "a pattern is APP/DOMAIN (e.g. PXabc123/* or */*.example.com); this one has no '/'";
    if (pattern.find('/', slash + 1) != std::string_view::npos)
        return "a pattern is APP/DOMAIN with one '/'; this one has more";
    if (slash == 0 || slash + 1 == pattern.size()) return "both sides of APP/DOMAIN must be given (write * for any)";
    return std::nullopt;
}

bool pair_matches(std::string_view pattern, const pair& p) {
    const auto slash = pattern.find('/');
    if (slash == std::string_view::npos) return false;
    return glob_matches(pattern.substr(0, slash), p.app_id, 0) &&
           glob_matches(pattern.substr(slash + 1), p.tld, FNM_CASEFOLD);
}

bool pair_selected(const pair& p, const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
    const auto matches = [&p](const std::string& pattern) { return pair_matches(pattern, p); };
    if (!include.empty() && std::none_of(include.begin(), include.end(), matches)) return false;
    return std::none_of(exclude.begin(), exclude.end(), matches);
}

}  // namespace isync::config
