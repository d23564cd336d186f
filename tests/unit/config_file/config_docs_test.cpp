// The two places a user reads about the configuration, README.md's
// "Configuration" table and config/incident-sync.yaml, against the daemon
// itself: the keys the loader accepts and the defaults of config::config{}.
//
// What is checked: every key the loader knows is in both documents, neither
// lists a key the loader does not know, and every default written (the
// README's "default" column; the YAML's value and its "Default:" comment),
// read by the loader as that key's value, gives the daemon's own default
// (so `60s` and `1m` are the same default, as they are to the daemon). The
// meaning and allowed values are prose; keeping those in step is left to
// review.

#include "config/config.hpp"
#include "config_file/loader.hpp"
#include "util/duration.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

const std::string source_dir = SOURCE_DIR;
const std::string readme_path = source_dir + "/README.md";
const std::string example_path = source_dir + "/config/incident-sync.yaml";

// sync.pairs has no default: every file loaded here lists one.
constexpr std::string_view one_pair = "  pairs: [{ app_id: PXabc123, tld: example.com }]\n";

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string trim(std::string_view s) {
    const auto first = s.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    return std::string(s.substr(first, s.find_last_not_of(" \t") - first + 1));
}

std::string strip_backticks(std::string s) {
    if (s.size() >= 2 && s.front() == '`' && s.back() == '`') return s.substr(1, s.size() - 2);
    return s;
}

std::vector<std::string> split(std::string_view s, std::string_view separator) {
    std::vector<std::string> out;
    for (;;) {
        const auto at = s.find(separator);
        out.push_back(std::string(s.substr(0, at)));
        if (at == std::string_view::npos) return out;
        s.remove_prefix(at + separator.size());
    }
}

// ------------------------------------------------------------ the loader

// The loader names the valid keys of a map when an unknown key is too far
// from all of them to suggest one ("valid keys are a, b, c"). A one-letter
// key is: every real key is at least three letters long.
std::vector<std::string> valid_keys_of(const std::string& yaml, const std::string& unknown_path) {
    const auto loaded = isync::config::load_config_text(yaml, "/x.yaml");
    EXPECT_FALSE(loaded.has_value()) << yaml;
    if (loaded) return {};
    const std::string marker = unknown_path + ": unknown key; valid keys are ";
    const std::string& message = loaded.error().message;
    const auto at = message.find(marker);
    EXPECT_NE(at, std::string::npos) << "the loader no longer lists the valid keys the way this test reads them:\n"
                                     << message;
    if (at == std::string::npos) return {};
    const auto start = at + marker.size();
    return split(std::string_view(message).substr(start, message.find('\n', start) - start), ", ");
}

// Every dotted key the loader accepts, e.g. "api.timeout" and "sync.pairs".
std::set<std::string> loader_keys() {
    std::set<std::string> out;
    for (const auto& section : valid_keys_of("Q: 1\nsync:\n" + std::string(one_pair), "Q")) {
        const std::string yaml = section == "sync" ? "sync:\n  Q: 1\n" + std::string(one_pair)
                                                   : section + ":\n  Q: 1\nsync:\n" + std::string(one_pair);
        for (const auto& key : valid_keys_of(yaml, section + ".Q")) out.insert(section + "." + key);
    }
    return out;
}

// ------------------------------------------------------------ the defaults

std::string text_default(const std::string& s) { return s.empty() ? "\"\"" : s; }

// As the file writes a size: the largest unit that divides it.
std::string size_default(std::uint64_t bytes) {
    if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
    if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
    if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
    return std::to_string(bytes);
}

// A list of strings as YAML's flow style writes it.
std::string list_default(const std::vector<std::string>& items) {
    std::string out = "[";
    for (const auto& item : items) out += (out.size() > 1 ? ", \"" : "\"") + item + "\"";
    return out + "]";
}

// Every key's value in `d`, as a config file could write it (durations by
// util::format_duration). A key the loader gains must be added here: the
// test says so.
std::map<std::string, std::string> describe(const isync::config::config& d) {
    using isync::util::format_duration;
    return {
        {"api.base_url", text_default(d.api.base_url)},
        {"api.token_file", text_default(d.api.token_file)},
        {"api.ca_file", text_default(d.api.ca_file)},
        {"api.timeout", format_duration(d.api.timeout)},
        {"api.page_size", std::to_string(d.api.page_size)},
        {"api.max_body", size_default(d.api.max_body)},
        {"api.proxy", text_default(d.api.proxy)},
        {"api.proxy_password_file", text_default(d.api.proxy_password_file)},
        {"api.insecure_skip_tls_verify", d.api.insecure_skip_tls_verify ? "true" : "false"},
        {"api.max_in_flight", std::to_string(d.api.max_in_flight)},
        {"retry.max_attempts", std::to_string(d.retry.max_attempts)},
        {"retry.base_delay", format_duration(d.retry.base_delay)},
        {"retry.max_delay", format_duration(d.retry.max_delay)},
        {"sync.interval", format_duration(d.sync.interval)},
        {"sync.initial_lookback", format_duration(d.sync.initial_lookback)},
        {"sync.overlap", format_duration(d.sync.overlap)},
        {"sync.settle", format_duration(d.sync.settle)},
        {"sync.max_window", format_duration(d.sync.max_window)},
        {"sync.slice_incidents", std::to_string(d.sync.slice_incidents)},
        {"sync.concurrency", std::to_string(d.sync.concurrency)},
        {"sync.discover", d.sync.discover ? "true" : "false"},
        {"sync.discover_interval", format_duration(d.sync.discover_interval)},
        {"sync.include", list_default(d.sync.include)},
        {"sync.exclude", list_default(d.sync.exclude)},
        {"sync.pairs", "(required)"},  // no default: the file must list them
        {"database.path", text_default(d.database.path)},
        {"database.busy_timeout", format_duration(d.database.busy_timeout)},
        {"database.url", text_default(d.database.url)},
        {"database.password_file", text_default(d.database.password_file)},
        {"database.lease_ttl", format_duration(d.database.lease_ttl)},
        {"log.level", text_default(d.log.level)},
        {"log.format", text_default(d.log.format)},
        {"metrics.listen", text_default(d.metrics.listen)},
    };
}

std::map<std::string, std::string> daemon_defaults() { return describe(isync::config::config{}); }

// What the daemon makes of `written` as the value of `key` (described as
// above), or the loader's error.
std::string as_loaded(const std::string& key, const std::string& written) {
    const auto dot = key.find('.');
    const std::string section = key.substr(0, dot);
    std::string yaml = section + ":\n  " + key.substr(dot + 1) + ": " + written + "\n";
    yaml += section == "sync" ? std::string(one_pair) : "sync:\n" + std::string(one_pair);
    const auto loaded = isync::config::load_config_text(yaml, "/x.yaml");
    if (!loaded) return "(refused: " + loaded.error().message + ")";
    return describe(*loaded).at(key);
}

// ------------------------------------------------------------ README.md

// key -> the "default" cell, from the first table under "## Configuration"
// whose header starts with "| key | default |".
std::map<std::string, std::string> readme_defaults() {
    const std::string text = read_text(readme_path);
    std::map<std::string, std::string> out;
    const auto section = text.find("\n## Configuration\n");
    EXPECT_NE(section, std::string::npos) << "README.md has no \"## Configuration\" section";
    if (section == std::string::npos) return out;
    std::istringstream lines(text.substr(section + 1));
    std::string line;
    bool in_table = false;
    while (std::getline(lines, line)) {
        if (!in_table) {
            if (line.rfind("| key | default |", 0) == 0)
                in_table = true;
            else if (line.rfind("## ", 0) == 0 && line != "## Configuration")
                break;  // the next section
            continue;
        }
        if (line.rfind("|", 0) != 0) break;  // the table ended
        if (line.rfind("|---", 0) == 0) continue;
        const auto cells = split(line, "|");  // "", key, default, ..., ""
        EXPECT_GE(cells.size(), 4u) << line;
        if (cells.size() < 4) continue;
        const std::string key = strip_backticks(trim(cells[1]));
        EXPECT_FALSE(out.count(key)) << "README.md lists " << key << " twice";
        out[key] = strip_backticks(trim(cells[2]));
    }
    EXPECT_TRUE(in_table) << "README.md's Configuration section has no \"| key | default |\" table";
    return out;
}

// ------------------------------------------------------------ the example

struct example_key {
    std::string value;    // as written, "" shown as ""
    std::string comment;  // the comment lines above the key, joined
};

// section.key -> what the example writes, from yaml-cpp (the values) and
// from the text (the comment block right above each key).
std::map<std::string, example_key> example_keys() {
    std::map<std::string, example_key> out;
    const YAML::Node root = YAML::LoadFile(example_path);
    for (const auto& section : root) {
        for (const auto& entry : section.second) {
            auto& k = out[section.first.Scalar() + "." + entry.first.Scalar()];
            if (entry.second.IsScalar()) k.value = text_default(entry.second.Scalar());
        }
    }
    std::istringstream lines(read_text(example_path));
    std::string line, current_section, comment;
    while (std::getline(lines, line)) {
        if (line.rfind("  #", 0) == 0) {
            comment += trim(line.substr(3)) + " ";
        } else if (!line.empty() && line[0] != ' ' && line[0] != '#' && line.back() == ':') {
            current_section = line.substr(0, line.size() - 1);
            comment.clear();
        } else if (line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ' &&
                   line.find(':') != std::string::npos) {
            const std::string key = current_section + "." + line.substr(2, line.find(':') - 2);
            if (auto it = out.find(key); it != out.end()) it->second.comment = comment;
            comment.clear();
        } else if (trim(line).empty()) {
            comment.clear();
        }
    }
    return out;
}

// The first word after "Default: ", without a closing full stop.
std::string comment_default(const std::string& comment) {
    const auto at = comment.find("Default: ");
    if (at == std::string::npos) return {};
    std::string word = comment.substr(at + 9, comment.find(' ', at + 9) - (at + 9));
    if (!word.empty() && word.back() == '.') word.pop_back();
    return word;
}

std::set<std::string> keys_of(const auto& map) {
    std::set<std::string> out;
    for (const auto& [key, _] : map) out.insert(key);
    return out;
}

std::string listed(const std::set<std::string>& keys) {
    std::string out;
    for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
    return out.empty() ? "(none)" : out;
}

// Keys in `a` but not in `b`.
std::set<std::string> missing(const std::set<std::string>& a, const std::set<std::string>& b) {
    std::set<std::string> out;
    for (const auto& k : a)
        if (!b.count(k)) out.insert(k);
    return out;
}

// ------------------------------------------------------------ tests

TEST(ConfigDocs, TheLoaderNamesItsKeys) {
    const auto keys = loader_keys();
    // A floor, so that a change in how the keys are found cannot make every
    // other test here pass on nothing.
    EXPECT_GE(keys.size(), 20u) << listed(keys);
    EXPECT_TRUE(keys.count("api.timeout"));
    EXPECT_TRUE(keys.count("sync.pairs"));
    EXPECT_TRUE(keys.count("metrics.listen"));
}

TEST(ConfigDocs, EveryKeyHasAKnownDefault) {
    const auto loader = loader_keys();
    const auto known = keys_of(daemon_defaults());
    EXPECT_EQ(missing(loader, known), std::set<std::string>{})
        << "the loader accepts keys this test has no default for; add them to daemon_defaults(), to README.md's "
           "Configuration table and to config/incident-sync.yaml";
    EXPECT_EQ(missing(known, loader), std::set<std::string>{}) << "daemon_defaults() lists keys the loader refuses";
}

TEST(ConfigDocs, ReadmeTableListsEveryKeyOnce) {
    const auto loader = loader_keys();
    const auto readme = keys_of(readme_defaults());
    EXPECT_EQ(missing(loader, readme), std::set<std::string>{}) << "keys missing from README.md's table";
    EXPECT_EQ(missing(readme, loader), std::set<std::string>{}) << "README.md's table lists keys the loader refuses";
}

TEST(ConfigDocs, ExampleListsEveryKey) {
    const auto loader = loader_keys();
    const auto example = keys_of(example_keys());
    EXPECT_EQ(missing(loader, example), std::set<std::string>{}) << "keys missing from config/incident-sync.yaml";
    EXPECT_EQ(missing(example, loader), std::set<std::string>{})
        << "config/incident-sync.yaml lists keys the loader refuses";
}

TEST(ConfigDocs, ReadmeDefaultsAreTheDaemons) {
    const auto readme = readme_defaults();
    for (const auto& [key, expected] : daemon_defaults()) {
        const auto it = readme.find(key);
        if (it == readme.end()) continue;  // reported by ReadmeTableListsEveryKeyOnce
        if (key == "sync.pairs") {
            EXPECT_EQ(it->second, "(required)") << "README.md's default for sync.pairs";
            continue;
        }
        EXPECT_EQ(as_loaded(key, it->second), expected)
            << "README.md's default for " << key << " is written \"" << it->second << "\"";
    }
}

TEST(ConfigDocs, ExampleValuesAndDefaultCommentsAreTheDaemons) {
    const auto example = example_keys();
    for (const auto& [key, expected] : daemon_defaults()) {
        const auto it = example.find(key);
        if (it == example.end()) continue;  // reported by ExampleListsEveryKey
        const auto& [value, comment] = it->second;
        if (key == "sync.pairs") {
            EXPECT_NE(comment.find("Required"), std::string::npos)
                << "config/incident-sync.yaml should say sync.pairs is required; its comment: " << comment;
            continue;
        }
        EXPECT_EQ(as_loaded(key, value), expected) << "config/incident-sync.yaml writes " << key << ": " << value;
        const std::string documented = comment_default(comment);
        EXPECT_FALSE(documented.empty()) << "no \"Default:\" in the comment above " << key
                                         << " in config/incident-sync.yaml: " << comment;
        if (!documented.empty()) {
            EXPECT_EQ(as_loaded(key, documented), expected)
                << "the comment above " << key << " in config/incident-sync.yaml says \"Default: " << documented
                << "\"";
        }
    }
}

}  // namespace

// Every metric family /metrics serves is named in the README's list.
TEST(ConfigDocs, EveryMetricFamilyIsInTheReadme) {
    const std::string readme = read_text(readme_path);
    const std::string source = read_text(source_dir + "/lib/ops/metrics_text.cpp");
    std::set<std::string> families;
    for (std::size_t at = source.find("\"incident_sync_"); at != std::string::npos;
         at = source.find("\"incident_sync_", at + 1)) {
        const auto end = source.find_first_not_of("abcdefghijklmnopqrstuvwxyz_", at + 1);
        std::string family = source.substr(at + 1, end - at - 1);
        for (const std::string_view suffix : {"_bucket", "_count", "_sum"})  // a histogram's series
            if (family.ends_with(suffix)) family.resize(family.size() - suffix.size());
        families.insert(family);
    }
    EXPECT_GE(families.size(), 20u);
    for (const auto& family : families)
        EXPECT_NE(readme.find(family), std::string::npos) << family << " is not in README.md";
}
