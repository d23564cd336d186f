#pragma once
// Expected failures travel as `isync::result<T>`: a value or an `error` that
// carries a machine-readable kind and a message written for the operator.

#include <boost/system/result.hpp>

#include <stdexcept>
#include <string>
#include <utility>

namespace isync {

enum class errc {
    config,         // the configuration is wrong; fix the file
    usage,          // the command line is wrong
    database,       // SQLite said no (busy, full, read-only, corrupt, ...)
    database_busy,  // another writer holds the database; try later
    parse,          // a response body has the wrong shape
    http_status,    // the server answered with a non-success status
    transport,      // connect, TLS, read or write failed
    timeout,        // a deadline expired
    too_large,      // a size limit was exceeded
    auth,           // 401/403: the token was refused
    bad_request,    // 422: the server refused the parameters
    cancelled,      // the operation was cancelled (shutdown)
    tls_refused,    // the server's certificate was refused: retrying within a poll cannot help
    no_such_host,   // the host name does not exist (NXDOMAIN): retrying within a poll cannot help
    io,             // writing the command's output failed (a full disk, a closed pipe)
    proxy_refused,  // the proxy refused our credentials (407): retrying cannot help
};

struct error {
    errc code;
    std::string message;
};

// Thrown where an `error` must cross an exception boundary (`result::value()`).
class error_exception : public std::runtime_error {
public:
    explicit error_exception(error e) : std::runtime_error(e.message), error_(std::move(e)) {}
    const error& get() const noexcept { return error_; }

private:
    error error_;
};

[[noreturn]] inline void throw_exception_from_error(const error& e, const boost::source_location&) {
    throw error_exception(e);
}

template <class T>
using result = boost::system::result<T, error>;

inline error make_error(errc code, std::string message) { return error{code, std::move(message)}; }

}  // namespace isync
