#pragma once
// Looking at a running daemon from a test: waiting for a condition, its
// metrics endpoint's port (from its log) and one sample of /metrics.

#include "support/subprocess.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace test_support {

// Polls `done` until it holds or `timeout` passes; whether it held. The pause
// between polls only spares the CPU for the daemon; correctness never depends on it.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

struct http_result {
    unsigned status;
    std::string body;
};

// GET `target` from 127.0.0.1:`port` over plain HTTP (the ops endpoint).
http_result http_get(std::uint16_t port, const std::string& target);

// The value of one sample line, e.g. `incident_sync_pages_total 12`; throws when absent.
double sample(const std::string& metrics, const std::string& series);

// The metrics port the daemon logged ("metrics on http://127.0.0.1:N/metrics").
std::optional<std::uint16_t> metrics_port(const subprocess& daemon);

}  // namespace test_support
