#pragma once
// A minimal HTTP CONNECT proxy on 127.0.0.1 (its own thread), for testing
// that the client tunnels TLS through corporate proxies.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace test_support {

class connect_proxy {
public:
    connect_proxy();
    ~connect_proxy();
    connect_proxy(const connect_proxy&) = delete;
    connect_proxy& operator=(const connect_proxy&) = delete;

    std::uint16_t port() const;
    std::uint64_t tunnels() const;                 // CONNECTs answered 200
    std::vector<std::string> authorities() const;  // CONNECT targets seen

    // From now on a CONNECT needs `Proxy-Authorization: <value>` (e.g.
    // "Basic dTpw"); without it, or with another value, the answer is 407.
    void require_authorization(std::string value);
    std::uint64_t refused_407() const;
    std::vector<std::string> authorizations() const;  // Proxy-Authorization values seen ("" when absent)

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace test_support
