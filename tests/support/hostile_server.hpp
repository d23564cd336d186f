#pragma once
// A TLS server on 127.0.0.1 that misbehaves on purpose, byte by byte, in ways
// the fake API (a well-formed HTTP server) cannot: a megabyte of headers, an
// endless chunked body, a redirect, a 100 MB body, no answer at all, headers
// dribbled a byte at a time, an HTML page with 200. One scenario per
// server; connections are served one after another, each until the client
// gives up on it.

#include "fake_api/pki.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace test_support {

enum class hostile_scenario {
    huge_headers,     // 200, then 1 MiB of headers
    endless_chunked,  // 200, chunked, 4 KiB chunks until the client hangs up
    redirect,         // 302 to another host
    huge_body,        // 200 with Content-Length: 100 MB, and the bytes
    never_answers,    // reads the request, then holds the connection silently
    dribble,          // one byte every 250 ms of a response whose headers never end
    non_json,         // 200 text/html, as from a captive portal
};

class hostile_server {
public:
    explicit hostile_server(hostile_scenario scenario);
    ~hostile_server();
    hostile_server(const hostile_server&) = delete;
    hostile_server& operator=(const hostile_server&) = delete;

    std::uint16_t port() const;
    const std::string& ca_pem() const;
    std::uint64_t bytes_sent() const;  // how far the client let it go
    std::uint64_t requests() const;    // requests read, over all connections

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace test_support
