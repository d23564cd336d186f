#pragma once
// A TLS server on 127.0.0.1 that misbehaves on purpose, byte by byte, in ways
// the fake API (a well-formed HTTP server) cannot: a megabyte of headers, an
// endless chunked body, a redirect, a 100 MB body. One scenario per server.

#include "fake_api/pki.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace test_support {

enum class hostile_scenario { huge_headers, endless_chunked, redirect, huge_body };

class hostile_server {
public:
    explicit hostile_server(hostile_scenario scenario);
    ~hostile_server();
    hostile_server(const hostile_server&) = delete;
    hostile_server& operator=(const hostile_server&) = delete;

    std::uint16_t port() const;
    const std::string& ca_pem() const;
    std::uint64_t bytes_sent() const;  // how far the client let it go

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace test_support
