#pragma once
// The `incident-sim` command line, parsed without touching files or sockets.

#include "fake_api/server.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace fake_api {

struct sim_options {
    server_options server;
    std::filesystem::path token_file;  // read by main; overrides server.token
    std::filesystem::path ca_out;      // empty: do not write
    std::filesystem::path port_file;   // empty: do not write
    std::filesystem::path stats_file;  // empty: do not write; else the final stats JSON, at exit
    bool help = false;
};

// The options `args` (argv without the program name) ask for, with the span
// ending at `now_ms`; errc::usage with a message naming the flag otherwise.
isync::result<sim_options> parse_sim_args(std::span<const std::string_view> args, std::int64_t now_ms);

// The --help text.
std::string sim_usage();

// `stats` as one line of JSON (no newline), the form incident-sim prints at
// exit: requests, status_counts (an object keyed by the status as a string),
// bytes_sent, body_bytes_uncompressed, peak_in_flight, refused_429,
// connections_accepted, incidents_served.
std::string sim_stats_json(const server_stats& stats);

}  // namespace fake_api
