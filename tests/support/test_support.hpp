#pragma once
#include <zlib.h>
#include <optional>
// Helpers shared by the unit tests: a temporary directory that cleans up after
// itself, the documented example incident (as JSON and as the model the parser
// must produce from it), page bodies, and a way to run code that might crash in
// a child process so one crash cannot take the whole test binary down.

#include "model/incident.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace isync::test {

// `encoded` inflated with zlib's `window_bits` (15: zlib format only, 15 + 16:
// gzip only), or nullopt when it is not exactly one complete stream of that
// format. The tests' independent reading of a compressed body.
inline std::optional<std::string> inflated(const std::string& encoded, int window_bits) {
    z_stream z{};
    if (inflateInit2(&z, window_bits) != Z_OK) return std::nullopt;
    std::string out;
    char chunk[16384];
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(encoded.data()));
    z.avail_in = static_cast<uInt>(encoded.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(chunk);
        z.avail_out = sizeof chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(chunk, sizeof chunk - z.avail_out);
    }
    const bool whole = rc == Z_STREAM_END && z.avail_in == 0;
    inflateEnd(&z);
    if (!whole) return std::nullopt;
    return out;
}

// A fresh directory under the system temp dir, removed with everything in it.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "isync-unit-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string file(std::string_view name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// A file of the source tree (e.g. "README.md") as text; empty when unreadable.
inline std::string source_file(const std::string& relative) {
    std::ifstream in(std::string(SOURCE_DIR) + "/" + relative);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// `haystack` contains `needle`, with both shown on failure.
inline ::testing::AssertionResult contains(std::string_view haystack, std::string_view needle) {
    if (haystack.find(needle) != std::string_view::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\"" << haystack << "\" does not contain \"" << needle << "\"";
}

// Replaces the only occurrence of `from` in `text`; throws when it is absent or
// ambiguous so a fixture edit cannot silently do nothing.
inline std::string replace_once(std::string text, std::string_view from, std::string_view to) {
    const auto at = text.find(from);
    if (at == std::string::npos || text.find(from, at + 1) != std::string::npos)
        throw std::logic_error("replace_once: \"" + std::string(from) + "\" is not present exactly once");
    text.replace(at, from.size(), to);
    return text;
}

inline constexpr std::string_view example_incident_id = "63cbd5e1a5b6c7d8e9f01234";

// An incident that uses every field the contract's table lists (the contract
// has no full example). Percentages are exact binary fractions so REAL columns
// compare exactly; the three timestamp forms the contract names all appear.
inline std::string documented_example_incident_json(std::string_view id = example_incident_id) {
    std::string json = R"({"id": "@ID@",
    "category": "pii",
    "incident": "New script reads PII fields",
    "details": "The script reads the email and card fields on checkout",
    "initiator": "https://cdn.vendor.example/js/tracker.js",
    "first_seen": "2023-01-21T15:00:00Z",
    "last_seen": "2023-01-22T08:30:15.084Z",
    "host_domain": "example.com",
    "app_id": "PXabc123",
    "page_types": ["login", "checkout"],
    "page_types_per": {"products_and_search": 12.25, "checkout": 62.5},
    "ack_updated_at": "2023-01-22T09:00:00.123Z",
    "additional_data": {"vulnerabilities": [
        {"package": "lodash", "version": "4.17.20", "ids": ["CVE-2021-23337", "CVE-2020-28500"]},
        {"package": "jquery", "version": "3.4.1", "ids": ["CVE-2020-11022"]}]},
    "under_review": false,
    "risk_level": "high",
    "script": {"users_affected_percentage": 37.5, "ack": true, "key": "cdn.vendor.example/js/tracker.js",
               "id": "5f1e2d3c4b5a69788796a5b4", "app_id": "PXabc123", "host_domain": "example.com",
               "type": "third_party", "vendor": "Vendor Inc.",
               "first_seen": "2023-01-20T12:00:00+02:00", "last_seen": "2023-01-22T03:00:00-05:30",
               "risk": {"level": "medium", "reason": "reads form fields"},
               "page_types": ["checkout", "login"]},
    "actions": [
        {"type": "network", "subtype": "post", "last_seen": "2023-01-22T08:30:15.084Z",
         "action_args": {"url": "https://collect.vendor.example/c", "method": "POST"}},
        {"type": "dom", "subtype": "read_input", "last_seen": "2023-01-22T10:00:00+02:00",
         "action_args": {"field": "email"}}]
})";
    return replace_once(std::move(json), "@ID@", id);
}

// The model the parser must produce from documented_example_incident_json(id).
inline model::incident documented_example_incident(std::string_view id = example_incident_id) {
    model::incident inc;
    inc.id = std::string(id);
    inc.app_id = "PXabc123";
    inc.host_domain = "example.com";
    inc.category = "pii";
    inc.title = "New script reads PII fields";
    inc.details = "The script reads the email and card fields on checkout";
    inc.initiator = "https://cdn.vendor.example/js/tracker.js";
    inc.first_seen = "2023-01-21T15:00:00.000Z";
    inc.last_seen = "2023-01-22T08:30:15.084Z";
    inc.ack_updated_at = "2023-01-22T09:00:00.123Z";
    inc.under_review = false;
    inc.risk_level = "high";
    inc.page_types = {
        {"checkout", true, 62.5},
        {"login", true, std::nullopt},
        {"products_and_search", false, 12.25},
    };
    model::script s;
    s.key = "cdn.vendor.example/js/tracker.js";
    s.id = "5f1e2d3c4b5a69788796a5b4";
    s.app_id = "PXabc123";
    s.host_domain = "example.com";
    s.type = "third_party";
    s.vendor = "Vendor Inc.";
    s.first_seen = "2023-01-20T10:00:00.000Z";
    s.last_seen = "2023-01-22T08:30:00.000Z";
    s.users_affected_percentage = 37.5;
    s.ack = true;
    s.risk_level = "medium";
    s.risk_reason = "reads form fields";
    s.page_types = {"checkout", "login"};
    inc.script = s;
    inc.actions = {
        {"network",
         "post",
         "2023-01-22T08:30:15.084Z",
         {{"url", "https://collect.vendor.example/c"}, {"method", "POST"}}},
        {"dom", "read_input", "2023-01-22T08:00:00.000Z", {{"field", "email"}}},
    };
    inc.vulnerabilities = {
        {"lodash", "4.17.20", {"CVE-2021-23337", "CVE-2020-28500"}},
        {"jquery", "3.4.1", {"CVE-2020-11022"}},
    };
    inc.raw_json = documented_example_incident_json(id);
    return inc;
}

// A response body shaped like the contract's: paging, then data.
inline std::string page_body(std::int64_t count, std::initializer_list<std::string_view> incidents) {
    std::string body = R"({"paging": {"previous": "", "current": "https://api.example/v1/incidents?take=20&skip=0", )"
                       R"("next": "https://internal.example/v1/incidents?take=20&skip=20", "count": )" +
                       std::to_string(count) + R"(}, "data": [)";
    bool first = true;
    for (auto inc : incidents) {
        if (!first) body += ", ";
        first = false;
        body += inc;
    }
    body += "]}";
    return body;
}

// Runs `fn` in a forked child. `fn` writes what it wants the parent to see to
// `out`; the parent gets that text, or a description of how the child died
// (an assertion or a segfault inside the code under test).
struct isolated_run {
    bool crashed = false;
    std::string how;     // "killed by signal 6 (Aborted)" when crashed
    std::string output;  // what `fn` wrote
};

inline isolated_run run_isolated(const std::function<void(std::string& out)>& fn) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    ::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
        ::close(fds[0]);
        std::string out;
        fn(out);
        std::size_t done = 0;
        while (done < out.size()) {
            const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
            if (n <= 0) ::_exit(3);
            done += static_cast<std::size_t>(n);
        }
        ::_exit(0);
    }
    ::close(fds[1]);
    isolated_run r;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0)
            r.output.append(buf, static_cast<std::size_t>(n));
        else if (n == 0 || errno != EINTR)
            break;
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) {
        r.crashed = true;
        r.how = "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        r.crashed = true;
        r.how = "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    return r;
}

}  // namespace isync::test
