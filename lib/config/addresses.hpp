#pragma once
// The three kinds of address the configuration holds, each with its one
// parser: the API's base URL, a CONNECT proxy, and the ops endpoint's listen
// address. The loader turns the file's text into these typed values, and
// everything after it (check-config, run, the HTTP client, the ops server)
// takes the value, so `check-config` validates exactly what `run` uses.
// Sans-io: no resolver, no socket.

#include "config/secret.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace isync::config {

// Why a text is not a value of its kind, in two parts so that callers can
// prefix a file position and key: "<problem>; <allowed>".
struct value_problem {
    std::string problem;  // e.g. "\"http://x\" does not use https"
    std::string allowed;  // e.g. "write https://host[:port][/path]"
};
// For `parsed<T>::value()` on a value that is not there.
[[noreturn]] inline void throw_exception_from_error(const value_problem& p, const boost::source_location&) {
    throw std::invalid_argument(p.problem + "; " + p.allowed);
}
template <class T>
using parsed = boost::system::result<T, value_problem>;

// `api.base_url` taken apart: https://host[:port][/path-prefix].
struct endpoint {
    std::string host;  // an IPv6 literal without brackets
    std::uint16_t port = 443;
    std::string path_prefix;  // without a trailing slash; may be empty

    bool operator==(const endpoint&) const = default;
};

// https://host[:port][/prefix], no user info, query or fragment. A URL with
// user info is never quoted back (it may hold a password).
parsed<endpoint> parse_base_url(std::string_view text);

struct proxy_endpoint {
    std::string host;
    std::uint16_t port = 3128;
    // Basic credentials for the CONNECT (`http://user:password@host:port`,
    // percent-decoded; the password may come from api.proxy_password_file).
    std::string user{};  // empty: none
    secret password{};

    bool operator==(const proxy_endpoint&) const = default;
};

// The proxy URL with its password replaced by ***, for messages and the
// loaded configuration.
std::string redact_proxy_url(std::string_view text);

// Where the proxy's text came from decides how strict the parse is:
// `api.proxy` must be http://host:port (clients disagree on a default port,
// and the file is the place to be exact); $https_proxy follows curl's habits
// (the scheme may be left out, the port defaults to 3128).
enum class proxy_source { config_file, environment };
parsed<proxy_endpoint> parse_proxy_url(std::string_view text, proxy_source source);

// `metrics.listen`: host:port, [v6]:port or :port (all interfaces). The host
// is an IP address or `localhost` (127.0.0.1); other names are refused rather
// than resolved at start-up. Port 0 asks the kernel for a free one.
struct listen_address {
    std::string address;  // numeric: "127.0.0.1", "::1", "0.0.0.0" for all interfaces
    std::uint16_t port = 0;

    bool operator==(const listen_address&) const = default;
};
parsed<listen_address> parse_listen_address(std::string_view text);

// `text` quoted for a message: control bytes escaped (one line), cut at 64
// bytes with "...", so empty values and stray spaces show. The loader's too.
std::string quote_value(std::string_view text);

// "<problem>; <allowed>" as one errc::config error, after `prefix` (e.g. "api.base_url: ").
error to_error(const value_problem& p, std::string_view prefix = {});

}  // namespace isync::config
