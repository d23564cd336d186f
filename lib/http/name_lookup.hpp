#pragma once
// Resolving the API's (or the proxy's) host name under a deadline.
//
// Asio's resolver runs getaddrinfo() on a private thread that the io_context
// joins when it is destroyed, so a name server that never answers holds the
// poll and then the process's exit for as long as glibc retries (timeout x
// attempts x servers, often half a minute). Here the lookup runs on a
// detached thread of its own and hands its answer back through a socket
// pair: at the deadline the caller stops listening and goes on; the thread
// finishes (or the process exits) whenever glibc lets it.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace isync::http {

struct lookup_result {
    // beast::error::timeout at the deadline; net::error::host_not_found for a
    // name that does not exist (NXDOMAIN); host_not_found_try_again when the
    // name server failed; operation_aborted when cancelled.
    boost::system::error_code ec;
    std::vector<boost::asio::ip::tcp::endpoint> endpoints;
};

boost::asio::awaitable<lookup_result> lookup_host(boost::asio::any_io_executor executor, std::string host,
                                                  std::uint16_t port, std::chrono::milliseconds deadline);

}  // namespace isync::http
