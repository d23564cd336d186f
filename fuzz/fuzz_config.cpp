// load_config_text over arbitrary bytes. The config file is written by an
// operator, not an attacker, but a typo must end in a message, never in a
// crash or a hang (yaml-cpp 0.7's LoadAll loops forever on a stray top-level
// comma, jbeder/yaml-cpp#1040: run with -timeout). Checks that an accepted
// config respects every documented range, and that a refusal has the
// documented shape: one `<file>:<line>:<col>: ...` line per problem, with
// no control characters from the file in it.

#include "config_file/loader.hpp"
#include "fuzz_check.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using isync::fuzz::check;
using isync::fuzz::printable;

namespace {

// A directory that does not exist, so relative paths resolve to nothing real.
constexpr std::string_view shown_name = "/nonexistent-fuzz-dir/incident-sync.yaml";

bool starts_with_position(std::string_view line) {
    // <file>:<line>:<col>: with both numbers 1-based.
    if (line.rfind(shown_name, 0) != 0) return false;
    std::size_t pos = shown_name.size();
    for (int field = 0; field < 2; ++field) {
        if (pos >= line.size() || line[pos] != ':') return false;
        ++pos;
        const std::size_t digits_from = pos;
        while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9') ++pos;
        if (pos == digits_from || line[digits_from] == '0') return false;
    }
    return line.substr(pos, 2) == ": ";
}

void check_refusal(const isync::error& e) {
    check(e.code == isync::errc::config, "a refused config is errc::config");
    std::string_view rest = e.message;
    check(!rest.empty(), "a refusal says why");
    while (!rest.empty()) {
        const auto end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        const auto whole = [&] {
            return printable(line.substr(0, 300)) + "\nwhole message: " + printable(e.message.substr(0, 600));
        };
        check(starts_with_position(line), "every line of a refusal starts with <file>:<line>:<col>: ", whole);
        // The loader quotes and escapes what the file wrote; nothing from the
        // file reaches the terminal or the journal raw.
        check(std::none_of(line.begin(), line.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }),
              "a refusal has no control characters but the newlines between problems", whole);
        if (end == std::string_view::npos) break;
        rest.remove_prefix(end + 1);
    }
}

void check_accepted(const isync::config::config& c) {
    using namespace std::chrono_literals;
    check(c.source == shown_name, "source is the shown name");
    check(!c.sync.pairs.empty(), "an accepted config has at least one pair");
    for (const auto& p : c.sync.pairs) check(!p.app_id.empty() && !p.tld.empty(), "every pair has app_id and tld");
    check(c.api.base_url.rfind("https://", 0) == 0 && c.api.base_url.back() != '/',
          "base_url is https, without a trailing slash", [&] { return printable(c.api.base_url); });
    check(c.api.timeout > 0ms && c.sync.interval > 0ms && c.sync.max_window > 0ms,
          "refused-zero durations are positive");
    check(c.api.page_size >= 1 && c.api.page_size <= 1000, "page_size in 1..1000");
    check(c.sync.concurrency >= 1 && c.sync.concurrency <= 64, "concurrency in 1..64");
    check(c.retry.max_attempts >= 1, "max_attempts at least 1");
    check(c.retry.max_delay >= c.retry.base_delay, "retry.max_delay >= retry.base_delay");
    check(c.api.max_body >= (1ull << 10) && c.api.max_body <= (4ull << 30), "max_body in 1KiB..4GiB");
    for (const auto d :
         {c.retry.base_delay, c.sync.initial_lookback, c.sync.overlap, c.sync.settle, c.database.busy_timeout})
        check(d >= 0ms, "durations are never negative");
    check(!c.database.path.empty(), "database.path is not empty");
    check(c.log.level == "trace" || c.log.level == "debug" || c.log.level == "info" || c.log.level == "warn" ||
              c.log.level == "error",
          "log.level is one of the five", [&] { return printable(c.log.level); });
    check(c.log.format == "text" || c.log.format == "json", "log.format is text or json");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view yaml(reinterpret_cast<const char*>(data), size);
    const auto loaded = isync::config::load_config_text(yaml, std::string(shown_name));
    if (loaded)
        check_accepted(*loaded);
    else
        check_refusal(loaded.error());
    return 0;
}
