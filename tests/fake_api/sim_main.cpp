// incident-sim: the fake Code Defender API as a process, for the demo and the
// benchmark. Wiring only; the behaviour lives in fake_api::server.

#include "fake_api/server.hpp"
#include "fake_api/sim_options.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

namespace {

std::int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string read_token(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read --token-file " + path.string());
    std::stringstream text;
    text << in.rdbuf();
    auto token = text.str();
    const auto first = token.find_first_not_of(" \t\r\n");
    const auto last = token.find_last_not_of(" \t\r\n");
    if (first == std::string::npos) throw std::runtime_error("--token-file " + path.string() + " is empty");
    return token.substr(first, last - first + 1);
}

// Scripts wait for the port and stats files to appear, so they must appear
// complete: write a temporary beside each and rename it into place.
void write_atomically(const std::filesystem::path& path, const std::string& text) {
    const auto temporary = path.string() + ".tmp";
    fake_api::write_file(temporary, text);
    std::filesystem::rename(temporary, path);
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    auto parsed = fake_api::parse_sim_args(args, wall_clock_ms());
    if (!parsed) {
        std::fprintf(stderr, "incident-sim: %s\n", parsed.error().message.c_str());
        return 2;
    }
    auto& options = *parsed;
    if (options.help) {
        std::fputs(fake_api::sim_usage().c_str(), stdout);
        return 0;
    }

    // Block the stop signals before the server's thread starts, so it inherits
    // the mask and only sigwait() below ever sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    try {
        if (!options.token_file.empty()) options.server.token = read_token(options.token_file);
        const auto started = std::chrono::steady_clock::now();
        fake_api::server sim(options.server);
        const auto ready_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
        if (!options.ca_out.empty()) sim.write_ca_file(options.ca_out);
        if (!options.port_file.empty()) write_atomically(options.port_file, std::to_string(sim.port()) + "\n");

        std::size_t memory = 0;
        sim.with_dataset([&](const fake_api::dataset& d) { memory = d.memory_bytes(); });
        std::printf("incident-sim listening on %s (%zu incidents, %zu pairs)\n", sim.base_url().c_str(),
                    sim.incident_count(), options.server.data.pairs.size());
        std::fflush(stdout);
        std::fprintf(stderr, "incident-sim: dataset ready in %lld ms, %.1f MiB\n", static_cast<long long>(ready_ms),
                     static_cast<double>(memory) / (1 << 20));

        int signal = 0;
        sigwait(&stop_signals, &signal);
        sim.stop();
        // One line, so a benchmark script can take the last line of the log.
        const auto stats = fake_api::sim_stats_json(sim.stats());
        std::printf("%s\n", stats.c_str());
        std::fflush(stdout);
        if (!options.stats_file.empty()) write_atomically(options.stats_file, stats + "\n");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "incident-sim: %s\n", e.what());
        return 1;
    }
    return 0;
}
