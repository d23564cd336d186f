#pragma once
// Running the daemon as a real process: stdout and stderr go to files, exits
// are awaited with a deadline (pidfd + poll, not sleeps), and on request the
// process's own peak RSS is measured.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace test_support {

// What a subprocess measures besides its exit status.
enum class measure {
    nothing,
    // Peak RSS, through the peak-rss launcher (tests/support/peak_rss_main.cpp).
    // pid() is then the launcher's: it passes SIGTERM, SIGINT and SIGHUP on,
    // and its death (SIGKILL) kills the program too.
    peak_rss,
};

class subprocess {
public:
    // Starts `argv[0]` with `argv`, extra environment `env` ("NAME=value"),
    // output captured under `output_dir` as <name>.stdout / <name>.stderr.
    subprocess(std::vector<std::string> argv, const std::filesystem::path& output_dir, std::string name,
               std::vector<std::string> env = {}, measure what = measure::nothing);
    ~subprocess();  // SIGKILLs a process still running
    subprocess(const subprocess&) = delete;
    subprocess& operator=(const subprocess&) = delete;

    int pid() const { return pid_; }
    void signal(int signo) const;

    // The exit status (128 + signal when killed), or nullopt when the process
    // is still running after `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout);

    // The process's own peak resident set in KiB (ru_maxrss), once wait() has
    // seen it exit; nullopt before that, or when started with measure::nothing.
    std::optional<long> peak_rss_kib() const { return peak_rss_kib_; }

    std::string stdout_text() const;
    std::string stderr_text() const;

private:
    int pid_ = -1;
    int pidfd_ = -1;
    std::optional<int> status_;
    std::optional<long> peak_rss_kib_;
    std::filesystem::path peak_rss_path_;  // empty unless measured
    std::filesystem::path stdout_path_;
    std::filesystem::path stderr_path_;
};

// Runs to completion (killing it after `timeout`) and returns the exit status.
int run_process(std::vector<std::string> argv, const std::filesystem::path& output_dir, std::string name,
                std::chrono::milliseconds timeout = std::chrono::seconds(120), std::vector<std::string> env = {});

std::string read_file(const std::filesystem::path& path);

}  // namespace test_support
