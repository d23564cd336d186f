#include "config_file/loader.hpp"

#include "config/addresses.hpp"
#include "config/pair_pattern.hpp"

#include "util/text.hpp"
#include "util/unique_fd.hpp"

#include <fmt/format.h>

#include "util/duration.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace isync::config {
namespace {

namespace fs = std::filesystem;

// A config file is a few KiB; the cap keeps `--config /dev/zero` from
// eating memory.
constexpr std::size_t max_config_bytes = 1 << 20;

constexpr std::string_view duration_allowed = "write an integer and a unit: ms, s, m, h or d (e.g. 30s, 5m)";
constexpr std::string_view pair_allowed =
    "every pair needs a non-empty app_id and tld (e.g. { app_id: PXabc123, tld: example.com })";
constexpr std::array<std::string_view, 5> log_levels{"trace", "debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 2> log_formats{"text", "json"};

// ---------------------------------------------------------------- text

// Optimal string alignment distance: Levenshtein plus swaps of neighbours,
// because swapped letters ("intreval") are as common a typo as a missing one.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

// The valid key closest to `written`, if it is close enough to be the one
// meant: a third of the key's letters may be wrong (at least one).
std::optional<std::string_view> nearest(std::string_view written, std::span<const std::string_view> valid) {
    std::optional<std::string_view> best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (const auto candidate : valid) {
        const std::size_t limit = std::max<std::size_t>(1, candidate.size() / 3);
        // The distance is at least the difference in length; checking that
        // first keeps a hostile megabyte-long key from costing a huge table.
        const std::size_t longer = std::max(written.size(), candidate.size());
        if (longer - std::min(written.size(), candidate.size()) > limit) continue;
        const std::size_t distance = edit_distance(written, candidate);
        if (distance < best_distance && distance <= limit) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best;
}

std::string_view kind_of(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Scalar:
            return "a single value";
        default:
            return "nothing";
    }
}

// "<file>:<line>:<col>: " with the 1-based position people and editors use.
// Nodes the parser did not place (an empty document) point at the start.
std::string where(const std::string& file, const YAML::Mark& mark) {
    const int line = mark.is_null() ? 1 : mark.line + 1;
    const int column = mark.is_null() ? 1 : mark.column + 1;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
}

// ---------------------------------------------------------------- values

std::optional<long long> parse_integer(std::string_view text) {
    long long value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// Bytes, or KiB/MiB/GiB. Decimal KB/MB are refused rather than guessed.
std::optional<std::uint64_t> parse_size(std::string_view text) {
    static constexpr std::array<std::pair<std::string_view, int>, 4> suffixes{
        {{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"", 0}}};
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0) return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
    if (ec != std::errc{}) return std::nullopt;
    for (const auto& [suffix, shift] : suffixes) {
        if (text.substr(digits) != suffix) continue;
        if (value > (std::numeric_limits<std::uint64_t>::max() >> shift)) return std::nullopt;
        return value << shift;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------- reader

// Whether a duration may be 0s, or a path "".
enum class zero { allowed, refused };
enum class empty { allowed, refused };

// One key of a map as the file wrote it. For list items the key is the item.
struct field {
    YAML::Node key;
    YAML::Node value;
    std::string path;  // dotted, e.g. sync.pairs[1].tld

    // A null value has no position of its own (yaml-cpp puts it on the next
    // token), so point at its key instead.
    YAML::Mark mark() const { return value.IsNull() ? key.Mark() : value.Mark(); }
};

struct key_rule {
    std::string_view name;
    std::function<void(const field&)> read;
};

std::vector<std::string_view> names_of(std::span<const key_rule> rules) {
    std::vector<std::string_view> names;
    for (const auto& rule : rules) names.push_back(rule.name);
    return names;
}

// Walks the parsed document into a `config`, collecting every problem so the
// operator can fix them all in one edit. Unknown or broken keys leave the
// default in place and the walk goes on.
// Text from the file (keys, values, yaml-cpp's messages quoting it) can hold
// newlines and control bytes; each problem must stay one clean line.
std::string one_line(std::string_view text) {
    std::string out;
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f)
            out += fmt::format("\\x{:02x}", u);
        else
            out.push_back(c);
    }
    return out;
}

class reader {
public:
    reader(std::string file, fs::path base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

    config read(const YAML::Node& root);
    const std::vector<std::string>& errors() const { return errors_; }
    const std::vector<std::string>& warnings() const { return warnings_; }

private:
    void fail(const YAML::Mark& mark, std::string_view key, std::string_view problem, std::string_view allowed) {
        errors_.push_back(where(file_, mark) + one_line(key) + ": " + one_line(problem) + "; " + std::string(allowed));
    }
    // Accepted, but probably not what the operator wants: the same one-line
    // form as an error, with advice in place of what is allowed.
    void warn(const YAML::Mark& mark, std::string_view key, std::string_view problem, std::string_view advice) {
        warnings_.push_back(where(file_, mark) + one_line(key) + ": " + one_line(problem) + "; " + std::string(advice));
    }

    std::vector<key_rule> root_rules(config& cfg);
    std::vector<key_rule> api_rules(api_config& api);
    std::vector<key_rule> retry_rules(retry_config& retry);
    std::vector<key_rule> sync_rules(sync_config& sync);
    std::vector<key_rule> database_rules(database_config& database);
    std::vector<key_rule> log_rules(log_config& log);
    std::vector<key_rule> metrics_rules(metrics_config& metrics);

    void read_map(const YAML::Node& map, const std::string& path, std::span<const key_rule> rules);
    void report_unknown(const YAML::Node& key, const std::string& path, std::span<const key_rule> rules);
    void read_section(const field& f, std::span<const key_rule> rules);

    std::optional<std::string> scalar(const field& f, std::string_view noun, std::string_view allowed);
    void read_string(const field& f, std::string& out);
    void read_path(const field& f, std::string& out, empty if_empty);
    void read_duration(const field& f, duration& out, zero if_zero);
    void read_int(const field& f, int& out, int min, int max);
    void read_page_size(const field& f, int& out);
    void read_bool(const field& f, bool& out);
    void read_enum(const field& f, std::string& out, std::span<const std::string_view> allowed, std::string_view noun);
    void read_size(const field& f, std::uint64_t& out);
    void read_base_url(const field& f, std::string& out, endpoint& typed);
    void read_proxy(const field& f, std::string& out, std::optional<proxy_endpoint>& typed);
    void read_database_url(const field& f, std::string& out);
    void read_ca_file(const field& f, std::string& out);
    void read_listen(const field& f, std::string& out, std::optional<listen_address>& typed);
    void read_pairs(const field& f, std::vector<pair>& out);
    void read_pair_patterns(const field& f, std::vector<std::string>& out);
    std::optional<pair> read_pair(const field& item);

    void check_pairs_present(const config& cfg);
    void check_relations(const config& cfg);

    std::string file_;
    fs::path base_dir_;
    std::vector<std::string> errors_;
    std::vector<std::string> warnings_;
    std::map<std::string, field, std::less<>> seen_;  // by dotted path
};

config reader::read(const YAML::Node& root) {
    config cfg;
    if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
        fail(root.Mark(), "(top level)", std::string("expected a map of sections, found ") + std::string(kind_of(root)),
             "start lines with section names such as api:, sync:");
        return cfg;
    }
    if (root.IsMap()) read_map(root, "", root_rules(cfg));
    check_pairs_present(cfg);
    if (errors_.empty()) check_relations(cfg);
    return cfg;
}

std::vector<key_rule> reader::root_rules(config& cfg) {
    return {
        {"api", [&](const field& f) { read_section(f, api_rules(cfg.api)); }},
        {"retry", [&](const field& f) { read_section(f, retry_rules(cfg.retry)); }},
        {"sync", [&](const field& f) { read_section(f, sync_rules(cfg.sync)); }},
        {"database", [&](const field& f) { read_section(f, database_rules(cfg.database)); }},
        {"log", [&](const field& f) { read_section(f, log_rules(cfg.log)); }},
        {"metrics", [&](const field& f) { read_section(f, metrics_rules(cfg.metrics)); }},
    };
}

std::vector<key_rule> reader::api_rules(api_config& api) {
    return {
        {"base_url", [&](const field& f) { read_base_url(f, api.base_url, api.base); }},
        {"token_file", [&](const field& f) { read_path(f, api.token_file, empty::allowed); }},
        {"ca_file", [&](const field& f) { read_ca_file(f, api.ca_file); }},
        {"timeout", [&](const field& f) { read_duration(f, api.timeout, zero::refused); }},
        {"page_size", [&](const field& f) { read_page_size(f, api.page_size); }},
        {"max_body", [&](const field& f) { read_size(f, api.max_body); }},
        {"proxy", [&](const field& f) { read_proxy(f, api.proxy, api.proxy_address); }},
        {"proxy_password_file", [&](const field& f) { read_path(f, api.proxy_password_file, empty::allowed); }},
        {"insecure_skip_tls_verify", [&](const field& f) { read_bool(f, api.insecure_skip_tls_verify); }},
        {"max_in_flight", [&](const field& f) { read_int(f, api.max_in_flight, 1, 256); }},
    };
}

std::vector<key_rule> reader::retry_rules(retry_config& retry) {
    return {
        {"max_attempts", [&](const field& f) { read_int(f, retry.max_attempts, 1, std::numeric_limits<int>::max()); }},
        {"base_delay", [&](const field& f) { read_duration(f, retry.base_delay, zero::allowed); }},
        {"max_delay", [&](const field& f) { read_duration(f, retry.max_delay, zero::allowed); }},
    };
}

std::vector<key_rule> reader::sync_rules(sync_config& sync) {
    return {
        {"interval", [&](const field& f) { read_duration(f, sync.interval, zero::refused); }},
        {"initial_lookback", [&](const field& f) { read_duration(f, sync.initial_lookback, zero::allowed); }},
        {"overlap", [&](const field& f) { read_duration(f, sync.overlap, zero::allowed); }},
        {"settle", [&](const field& f) { read_duration(f, sync.settle, zero::allowed); }},
        {"max_window", [&](const field& f) { read_duration(f, sync.max_window, zero::refused); }},
        {"concurrency", [&](const field& f) { read_int(f, sync.concurrency, 1, 64); }},
        {"slice_incidents", [&](const field& f) { read_int(f, sync.slice_incidents, 100, 1'000'000); }},
        {"pairs", [&](const field& f) { read_pairs(f, sync.pairs); }},
        {"discover", [&](const field& f) { read_bool(f, sync.discover); }},
        {"discover_interval", [&](const field& f) { read_duration(f, sync.discover_interval, zero::refused); }},
        {"include", [&](const field& f) { read_pair_patterns(f, sync.include); }},
        {"exclude", [&](const field& f) { read_pair_patterns(f, sync.exclude); }},
    };
}

std::vector<key_rule> reader::database_rules(database_config& database) {
    return {
        {"path", [&](const field& f) { read_path(f, database.path, empty::refused); }},
        {"busy_timeout", [&](const field& f) { read_duration(f, database.busy_timeout, zero::allowed); }},
        {"url", [&](const field& f) { read_database_url(f, database.url); }},
        {"password_file", [&](const field& f) { read_path(f, database.password_file, empty::allowed); }},
        {"lease_ttl",
         [&](const field& f) {
             read_duration(f, database.lease_ttl, zero::refused);
             if (database.lease_ttl < std::chrono::seconds(3))
                 fail(f.mark(), f.path, "is shorter than 3s",
                      "write 3s or more (30s is the default): a lease is renewed every third of it");
         }},
    };
}

std::vector<key_rule> reader::log_rules(log_config& log) {
    return {
        {"level", [&](const field& f) { read_enum(f, log.level, log_levels, "log level"); }},
        {"format", [&](const field& f) { read_enum(f, log.format, log_formats, "log format"); }},
    };
}

std::vector<key_rule> reader::metrics_rules(metrics_config& metrics) {
    return {
        {"listen", [&](const field& f) { read_listen(f, metrics.listen, metrics.address); }},
    };
}

void reader::read_map(const YAML::Node& map, const std::string& path, std::span<const key_rule> rules) {
    for (const auto& entry : map) {
        const YAML::Node& key = entry.first;
        if (!key.IsScalar()) {
            fail(key.Mark(), path.empty() ? "(top level)" : path, std::string("a key is ") + std::string(kind_of(key)),
                 "keys are plain names followed by a colon");
            continue;
        }
        const std::string child = path.empty() ? key.Scalar() : path + "." + key.Scalar();
        const auto rule =
            std::find_if(rules.begin(), rules.end(), [&](const key_rule& r) { return r.name == key.Scalar(); });
        if (rule == rules.end()) {
            report_unknown(key, child, rules);
            continue;
        }
        // yaml-cpp keeps both copies of a repeated key; which one a reader
        // would honour is a guess, so refuse to make it.
        if (const auto first = seen_.find(child); first != seen_.end()) {
            fail(key.Mark(), child,
                 "given twice (first on line " + std::to_string(first->second.key.Mark().line + 1) + ")",
                 "write each key once");
            continue;
        }
        const field f{key, entry.second, child};
        seen_.emplace(child, f);
        rule->read(f);
    }
}

void reader::report_unknown(const YAML::Node& key, const std::string& path, std::span<const key_rule> rules) {
    const auto names = names_of(rules);
    if (const auto suggestion = nearest(key.Scalar(), names))
        fail(key.Mark(), path, "unknown key", "did you mean \"" + std::string(*suggestion) + "\"?");
    else
        fail(key.Mark(), path, "unknown key", "valid keys are " + util::join(names, ", "));
}

void reader::read_section(const field& f, std::span<const key_rule> rules) {
    if (f.value.IsNull()) return;  // a section with every key commented out
    if (!f.value.IsMap()) {
        const auto names = names_of(rules);
        fail(f.mark(), f.path, std::string("expected a map, found ") + std::string(kind_of(f.value)),
             "indent the section's keys under it: " + util::join(names, ", "));
        return;
    }
    read_map(f.value, f.path, rules);
}

// The value's text, or nullopt after reporting a list or map where one value
// belongs. Null reads as "" so that `key:` and `key: ""` mean the same.
std::optional<std::string> reader::scalar(const field& f, std::string_view noun, std::string_view allowed) {
    if (f.value.IsNull()) return std::string();
    if (!f.value.IsScalar()) {
        fail(f.mark(), f.path, "expected " + std::string(noun) + ", found " + std::string(kind_of(f.value)), allowed);
        return std::nullopt;
    }
    return f.value.Scalar();
}

void reader::read_string(const field& f, std::string& out) {
    if (auto text = scalar(f, "a string", "write a single value")) out = std::move(*text);
}

// Relative to the config file, not the working directory: a daemon started
// by systemd runs in `/`, which is never what the author of the file meant.
void reader::read_path(const field& f, std::string& out, empty if_empty) {
    auto text = scalar(f, "a path", "write a single file path");
    if (!text) return;
    if (if_empty == empty::refused && text->empty()) return fail(f.mark(), f.path, "empty", "write a file path");
    const fs::path written(*text);
    // ":memory:" is SQLite's name for a private in-memory database, not a file.
    if (text->empty() || written.is_absolute() || *text == ":memory:")
        out = std::move(*text);
    else
        out = (base_dir_ / written).lexically_normal().string();
}

void reader::read_duration(const field& f, duration& out, zero if_zero) {
    const auto text = scalar(f, "a duration", duration_allowed);
    if (!text) return;
    if (text->empty()) return fail(f.mark(), f.path, "no value", duration_allowed);
    const auto parsed = util::parse_duration(*text);
    if (!parsed) return fail(f.mark(), f.path, quote_value(*text) + " is not a duration", duration_allowed);
    if (if_zero == zero::refused && parsed->count() == 0)
        return fail(f.mark(), f.path, quote_value(*text) + " is zero",
                    "write a duration greater than zero (e.g. 30s, 5m)");
    out = *parsed;
}

void reader::read_int(const field& f, int& out, int min, int max) {
    const std::string allowed = max == std::numeric_limits<int>::max()
                                    ? "write an integer of at least " + std::to_string(min)
                                    : "write an integer from " + std::to_string(min) + " to " + std::to_string(max);
    const auto text = scalar(f, "an integer", allowed);
    if (!text) return;
    if (text->empty()) return fail(f.mark(), f.path, "no value", allowed);
    const auto parsed = parse_integer(*text);
    if (!parsed) return fail(f.mark(), f.path, quote_value(*text) + " is not an integer", allowed);
    if (*parsed < min || *parsed > max) return fail(f.mark(), f.path, quote_value(*text) + " is out of range", allowed);
    out = static_cast<int>(*parsed);
}

// 1 to 1000; below 10 works but wastes requests, which the operator is told.
// The page walk (sync/page_walk.hpp) starts each page after the first 2 ids
// (1 when a page holds 2) before the end of the one before it: those ids are
// its proof that nothing was skipped, and they are read twice.
void reader::read_page_size(const field& f, int& out) {
    constexpr int advised = 10;
    const std::size_t errors_before = errors_.size();
    read_int(f, out, 1, 1000);
    if (errors_.size() != errors_before || out >= advised) return;
    const std::string advice = fmt::format("write {} or more (the default is {})", advised, api_config{}.page_size);
    if (out == 1)
        return warn(f.mark(), f.path,
                    "1 is small: a page of 1 cannot overlap the page before it, so the proof that nothing was "
                    "skipped falls back to counting alone, and every incident costs a request",
                    advice);
    const int overlap = std::min(2, out - 1);
    warn(f.mark(), f.path,
         fmt::format("{} is small: each page after the first re-reads the last {} of the page before it, to "
                     "prove nothing was skipped, so {}% of what it fetches is read twice",
                     out, overlap == 1 ? std::string("id") : fmt::format("{} ids", overlap), overlap * 100 / out),
         advice);
}

// Only true and false: YAML 1.1's yes/no/on/off are too easy to write by
// accident on a key whose name says insecure.
void reader::read_bool(const field& f, bool& out) {
    constexpr std::string_view allowed = "write true or false";
    const auto text = scalar(f, "true or false", allowed);
    if (!text) return;
    if (*text == "true")
        out = true;
    else if (*text == "false")
        out = false;
    else
        fail(f.mark(), f.path, text->empty() ? "no value" : quote_value(*text) + " is not true or false", allowed);
}

void reader::read_enum(const field& f, std::string& out, std::span<const std::string_view> allowed,
                       std::string_view noun) {
    const std::string allowed_text = "write one of " + util::join(allowed, ", ");
    const auto text = scalar(f, "a " + std::string(noun), allowed_text);
    if (!text) return;
    if (std::find(allowed.begin(), allowed.end(), *text) == allowed.end())
        return fail(f.mark(), f.path, quote_value(*text) + " is not a " + std::string(noun), allowed_text);
    out = *text;
}

// The lower bound is one incident page; the upper bound is memory the daemon
// may reasonably hold for one response.
void reader::read_size(const field& f, std::uint64_t& out) {
    constexpr std::string_view format_allowed = "write a number of bytes, optionally with KiB, MiB or GiB (e.g. 64MiB)";
    constexpr std::string_view range_allowed = "write a size from 1KiB to 4GiB";
    const auto text = scalar(f, "a size", format_allowed);
    if (!text) return;
    const auto parsed = parse_size(*text);
    if (!parsed) return fail(f.mark(), f.path, quote_value(*text) + " is not a size", format_allowed);
    if (*parsed < (1ull << 10) || *parsed > (4ull << 30))
        return fail(f.mark(), f.path, quote_value(*text) + " is out of range", range_allowed);
    out = *parsed;
}

// The one parser of each kind (config/addresses.hpp) decides; the loader
// only places its words after the file position and key.
void reader::read_base_url(const field& f, std::string& out, endpoint& typed) {
    auto text = scalar(f, "a URL", "write https://host[:port][/path]");
    if (!text) return;
    auto parsed = parse_base_url(*text);
    if (!parsed) return fail(f.mark(), f.path, parsed.error().problem, parsed.error().allowed);
    // The HTTP client joins paths onto the base: a trailing slash is dropped
    // here rather than doubled there.
    while (!text->empty() && text->back() == '/') text->pop_back();
    // A scheme's case means nothing (RFC 3986), and parse_base_url accepted
    // only https: "HTTPS://" is shown as https.
    text->replace(0, 5, "https");
    out = std::move(*text);
    typed = std::move(*parsed);
}

// A libpq connection URI without a password: the configuration file is
// readable by more people than the password should be.
void reader::read_database_url(const field& f, std::string& out) {
    auto text = scalar(f, "a URL", "write postgresql://user@host:5432/dbname, or leave it out for SQLite");
    if (!text || text->empty()) return;
    const std::string_view url(*text);
    const auto scheme_end = url.find("://");
    const auto scheme = url.substr(0, scheme_end);
    if (scheme_end == std::string_view::npos || (scheme != "postgresql" && scheme != "postgres"))
        return fail(f.mark(), f.path, "is not a postgresql:// URL",
                    "write postgresql://user@host:5432/dbname?sslmode=verify-full (libpq's URI form)");
    const auto rest = url.substr(scheme_end + 3);
    const auto authority = rest.substr(0, rest.find_first_of("/?"));
    const auto at = authority.rfind('@');
    const bool password_in_userinfo =
        at != std::string_view::npos && authority.substr(0, at).find(':') != std::string_view::npos;
    const auto query = rest.find('?') == std::string_view::npos ? std::string_view() : rest.substr(rest.find('?'));
    const bool password_in_query =
        query.find("?password=") != std::string_view::npos || query.find("&password=") != std::string_view::npos;
    if (password_in_userinfo || password_in_query)
        return fail(f.mark(), f.path, "holds a password",
                    "the password never goes in the configuration file: put it in database.password_file (mode "
                    "600), a systemd credential (database-password), PGPASSFILE or ~/.pgpass, and remove it here");
    out = std::move(*text);
}

void reader::read_proxy(const field& f, std::string& out, std::optional<proxy_endpoint>& typed) {
    auto text = scalar(f, "a URL", "write http://host:port, or \"\" to use $https_proxy");
    if (!text) return;
    if (!text->empty()) {
        auto parsed = parse_proxy_url(*text, proxy_source::config_file);
        if (!parsed) return fail(f.mark(), f.path, parsed.error().problem, parsed.error().allowed);
        typed = std::move(*parsed);
    } else {
        typed.reset();
    }
    out = redact_proxy_url(*text);  // the loaded configuration never holds the password
}

// Checked now so a typo fails at start-up, not at the first TLS handshake.
void reader::read_ca_file(const field& f, std::string& out) {
    std::string resolved;
    read_path(f, resolved, empty::allowed);
    if (resolved.empty()) return;
    std::error_code ec;
    const auto status = fs::status(resolved, ec);
    constexpr std::string_view allowed = "give the path of a PEM CA bundle, or \"\" to use only the system store";
    if (!fs::exists(status)) return fail(f.mark(), f.path, resolved + " does not exist", allowed);
    if (!fs::is_regular_file(status)) return fail(f.mark(), f.path, resolved + " is not a file", allowed);
    out = std::move(resolved);
}

void reader::read_listen(const field& f, std::string& out, std::optional<listen_address>& typed) {
    auto text = scalar(f, "host:port", "write host:port (e.g. 127.0.0.1:9464), or \"\" to disable metrics");
    if (!text) return;
    if (!text->empty()) {
        auto parsed = parse_listen_address(*text);
        if (!parsed) return fail(f.mark(), f.path, parsed.error().problem, parsed.error().allowed);
        typed = *parsed;
    } else {
        typed.reset();
    }
    out = std::move(*text);
}

void reader::read_pairs(const field& f, std::vector<pair>& out) {
    if (f.value.IsNull()) return;  // reported as missing by check_pairs_present
    if (!f.value.IsSequence()) {
        return fail(f.mark(), f.path, std::string("expected a list, found ") + std::string(kind_of(f.value)),
                    "write a list of pairs (e.g. - { app_id: PXabc123, tld: example.com })");
    }
    std::vector<std::size_t> index_of;  // position in the file of each pair kept
    std::size_t index = 0;
    for (const auto& item_node : f.value) {
        const field item{item_node, item_node, f.path + "[" + std::to_string(index) + "]"};
        if (auto p = read_pair(item)) {
            const auto duplicate = std::find(out.begin(), out.end(), *p);
            if (duplicate == out.end()) {
                out.push_back(std::move(*p));
                index_of.push_back(index);
            } else {
                const auto first = index_of[static_cast<std::size_t>(duplicate - out.begin())];
                fail(item.mark(), item.path,
                     "repeats " + f.path + "[" + std::to_string(first) + "] (app_id " + p->app_id + ", tld " + p->tld +
                         ")",
                     "list each pair once");
            }
        }
        ++index;
    }
}

void reader::read_pair_patterns(const field& f, std::vector<std::string>& out) {
    constexpr std::string_view allowed =
        "write a list of APP/DOMAIN globs (e.g. [\"PXabc123/*\", \"*/*.example.com\"])";
    if (f.value.IsNull()) return;
    if (!f.value.IsSequence())
        return fail(f.mark(), f.path, std::string("expected a list, found ") + std::string(kind_of(f.value)), allowed);
    std::size_t index = 0;
    for (const auto& item_node : f.value) {
        const field item{item_node, item_node, f.path + "[" + std::to_string(index++) + "]"};
        auto text = scalar(item, "a pattern", allowed);
        if (!text) continue;
        if (auto problem = pair_pattern_problem(*text)) {
            fail(item.mark(), item.path, *problem, allowed);
            continue;
        }
        out.push_back(std::move(*text));
    }
}

std::optional<pair> reader::read_pair(const field& item) {
    if (!item.value.IsMap()) {
        fail(item.mark(), item.path, std::string("expected a map, found ") + std::string(kind_of(item.value)),
             pair_allowed);
        return std::nullopt;
    }
    pair p;
    const std::size_t errors_before = errors_.size();
    const std::array<key_rule, 2> rules{{
        {"app_id", [&](const field& f) { read_string(f, p.app_id); }},
        {"tld", [&](const field& f) { read_string(f, p.tld); }},
    }};
    read_map(item.value, item.path, rules);
    if (errors_.size() != errors_before) return std::nullopt;

    for (const auto& [name, value] : {std::pair{"app_id", &p.app_id}, std::pair{"tld", &p.tld}}) {
        const std::string path = item.path + "." + name;
        const auto written = seen_.find(path);
        if (written == seen_.end())
            fail(item.mark(), path, "missing", pair_allowed);
        else if (value->empty())
            fail(written->second.mark(), path, "empty", pair_allowed);
    }
    if (errors_.size() != errors_before) return std::nullopt;
    return p;
}

// Pairs have no default: syncing nothing is never what the operator meant.
// Only an absent or empty list is reported here; broken entries already were.
void reader::check_pairs_present(const config& cfg) {
    if (!cfg.sync.pairs.empty() || cfg.sync.discover) return;
    const auto sync = seen_.find("sync");
    const auto pairs = seen_.find("sync.pairs");
    const auto is_empty = [](const YAML::Node& n) { return n.IsNull() || (n.IsSequence() && n.size() == 0); };
    const bool section_broken = sync != seen_.end() && !sync->second.value.IsNull() && !sync->second.value.IsMap();
    const bool pairs_broken = pairs != seen_.end() && !is_empty(pairs->second.value);
    if (section_broken || pairs_broken) return;
    const YAML::Mark mark = pairs != seen_.end()  ? pairs->second.mark()
                            : sync != seen_.end() ? sync->second.key.Mark()
                                                  : YAML::Mark::null_mark();
    fail(mark, "sync.pairs", "at least one {app_id, tld} pair is required",
         "add a list under sync: (e.g. pairs: [{ app_id: PXabc123, tld: example.com }]), or set sync.discover: true "
         "to poll every pair the account lists");
}

void reader::check_relations(const config& cfg) {
    const auto& retry = cfg.retry;
    if (retry.max_delay >= retry.base_delay) return;
    const std::string base = util::format_duration(retry.base_delay);
    const std::string max = util::format_duration(retry.max_delay);
    // Point at whichever of the two the file wrote; max_delay when both.
    if (const auto written = seen_.find("retry.max_delay"); written != seen_.end())
        return fail(written->second.mark(), "retry.max_delay", max + " is less than retry.base_delay (" + base + ")",
                    "write a duration of at least " + base);
    fail(seen_.at("retry.base_delay").mark(), "retry.base_delay", base + " is more than retry.max_delay (" + max + ")",
         "write at most " + max + " or raise retry.max_delay");
}

// ---------------------------------------------------------------- input

// Records where the documents of a stream start, without building them.
class document_starts : public YAML::EventHandler {
public:
    void OnDocumentStart(const YAML::Mark& mark) override { starts_.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}

    const std::vector<YAML::Mark>& starts() const { return starts_; }

private:
    std::vector<YAML::Mark> starts_;
};

constexpr std::string_view syntax_hint = "check the indentation, colons and quotes on this line and the one before";

std::string syntax_error(const std::string& file, const YAML::Exception& e) {
    return where(file, e.mark) + "YAML syntax error: " + one_line(e.msg) + "; " + std::string(syntax_hint);
}

// What YAML::Load cannot see because it reads only the first document: a
// second one, or a stray top-level comma. YAML::LoadAll is not used because
// on that comma yaml-cpp 0.7 reports an empty document again and again
// without moving on (jbeder/yaml-cpp#1040) and allocates until killed; three
// documents at most tell a real second document from that loop.
std::optional<std::string> stream_problem(const std::string& file, const std::string& text) {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    document_starts handler;
    const auto& starts = handler.starts();
    for (int i = 0; i < 3 && parser.HandleNextDocument(handler); ++i) {
        if (starts.size() >= 2 && starts.back().pos == starts[starts.size() - 2].pos) {
            const auto pos = static_cast<std::size_t>(starts.back().pos);
            return where(file, starts.back()) + "YAML syntax error: unexpected " +
                   quote_value(std::string_view(text).substr(pos, 1)) + "; " + std::string(syntax_hint);
        }
    }
    if (starts.size() >= 2)
        return where(file, starts[1]) +
               "(document): a second YAML document starts here; the config file holds exactly one";
    return std::nullopt;
}

// Anchors relative paths; absolute so that a later chdir cannot move them.
fs::path base_dir_of(const fs::path& file) {
    std::error_code ec;
    const fs::path absolute = fs::absolute(file, ec);
    return (ec ? file : absolute).parent_path();
}

using util::unique_fd;

// The reason comes from errno so the operator reads "Permission denied",
// the one thing that tells them what to fix.
result<std::string> read_config_bytes(const fs::path& file) {
    const auto failure = [&](const std::string& reason) {
        return make_error(errc::config, "cannot read config file " + file.string() + ": " + reason);
    };
    const unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return failure(std::system_category().message(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return failure(std::system_category().message(errno));
    if (S_ISDIR(st.st_mode)) return failure(std::system_category().message(EISDIR));

    std::string text;
    std::array<char, 8192> buffer;
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return failure(std::system_category().message(errno));
        if (n == 0) return text;
        text.append(buffer.data(), static_cast<std::size_t>(n));
        if (text.size() > max_config_bytes) return failure("larger than 1 MiB, which no config file needs");
    }
}

}  // namespace

result<config> load_config_text(std::string_view yaml, const std::filesystem::path& shown_name) {
    const std::string file = shown_name.string();
    // yaml-cpp reports syntax errors (and, rarely, its own failures while the
    // tree is walked) as exceptions; they stop at this boundary.
    try {
        const std::string text(yaml);
        const YAML::Node root = YAML::Load(text);
        if (auto problem = stream_problem(file, text)) return make_error(errc::config, std::move(*problem));
        reader r(file, base_dir_of(shown_name));
        config cfg = r.read(root);
        if (!r.errors().empty()) {
            std::string message;
            for (const auto& line : r.errors()) message += (message.empty() ? "" : "\n") + line;
            return make_error(errc::config, std::move(message));
        }
        cfg.source = shown_name;
        cfg.warnings = r.warnings();
        return cfg;
    } catch (const YAML::DeepRecursion& e) {
        // yaml-cpp's own text for this is "bad file".
        return make_error(errc::config, where(file, e.mark) +
                                            "YAML syntax error: lists or maps nested too deeply; "
                                            "the config file needs three levels at most");
    } catch (const YAML::Exception& e) {
        return make_error(errc::config, syntax_error(file, e));
    }
}

result<config> load_config_file(const std::filesystem::path& file) {
    auto text = read_config_bytes(file);
    if (!text) return text.error();
    return load_config_text(*text, file);
}

}  // namespace isync::config
