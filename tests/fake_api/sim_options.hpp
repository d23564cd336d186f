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
    bool help = false;
};

// The options `args` (argv without the program name) ask for, with the span
// ending at `now_ms`; errc::usage with a message naming the flag otherwise.
isync::result<sim_options> parse_sim_args(std::span<const std::string_view> args, std::int64_t now_ms);

// The --help text.
std::string sim_usage();

}  // namespace fake_api
