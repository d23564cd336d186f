#pragma once
// GET /v1/account-settings: the account's applications and their domains,
// from which pair discovery (`sync.discover`) learns what to poll. Sans-io.

#include "config/addresses.hpp"
#include "config/config.hpp"
#include "util/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace isync::api {

struct application {
    std::string app_id;
    std::string name;  // empty when the API gives none
    bool enabled = true;
    std::vector<std::string> domains;  // hostDomains[].domain, in the API's order

    bool operator==(const application&) const = default;
};

// `/prefix/v1/account-settings`.
std::string account_settings_target(const config::endpoint& ep);

// The documented fields of the body; unknown ones are ignored. A missing
// `applications` array, an application without a string `app_id`, or a
// host domain without a string `domain` is errc::parse naming the JSON
// path. A missing `enabled` counts as enabled (the field is the vendor's
// way to switch an application off, not to switch it on); missing
// `hostDomains` as none.
result<std::vector<application>> parse_account_settings(std::string_view body);

// Every enabled application x domain selected by the include/exclude
// patterns (config/pair_pattern.hpp), sorted, without repeats.
std::vector<config::pair> discovered_pairs(const std::vector<application>& apps,
                                           const std::vector<std::string>& include,
                                           const std::vector<std::string>& exclude);

}  // namespace isync::api
