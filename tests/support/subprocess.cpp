#include "support/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace test_support {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

subprocess::subprocess(std::vector<std::string> argv, const std::filesystem::path& output_dir, std::string name,
                       std::vector<std::string> env, measure what)
    : stdout_path_(output_dir / (name + ".stdout")), stderr_path_(output_dir / (name + ".stderr")) {
    if (what == measure::peak_rss) {
        // Not wait4's rusage of our own child: posix_spawn runs it in this
        // process's memory until the exec, and Linux carries that high-water
        // mark into the program's ru_maxrss. The launcher forks it afresh.
        peak_rss_path_ = output_dir / (name + ".peak_rss");
        argv.insert(argv.begin(), {PEAK_RSS_PATH, peak_rss_path_.string()});
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
    for (auto& e : env) env_strings.push_back(e);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error(std::string("posix_spawn ") + argv[0] + ": " + std::strerror(rc));
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd_ < 0) throw std::runtime_error(std::string("pidfd_open: ") + std::strerror(errno));
}

subprocess::~subprocess() {
    if (!status_) {
        ::kill(pid_, SIGKILL);
        wait(std::chrono::seconds(10));
    }
    if (pidfd_ >= 0) ::close(pidfd_);
}

void subprocess::signal(int signo) const {
    if (!status_) ::kill(pid_, signo);
}

std::optional<int> subprocess::wait(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    pollfd p{pidfd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready <= 0) return std::nullopt;
    int raw = 0;
    if (::waitpid(pid_, &raw, 0) != pid_) return std::nullopt;
    status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    if (!peak_rss_path_.empty()) {
        long kib = 0;
        std::ifstream report(peak_rss_path_);
        if (report >> kib) peak_rss_kib_ = kib;  // absent when the launcher itself was killed
    }
    return status_;
}

std::string subprocess::stdout_text() const { return read_file(stdout_path_); }
std::string subprocess::stderr_text() const { return read_file(stderr_path_); }

int run_process(std::vector<std::string> argv, const std::filesystem::path& output_dir, std::string name,
                std::chrono::milliseconds timeout, std::vector<std::string> env) {
    subprocess p(std::move(argv), output_dir, std::move(name), std::move(env));
    if (auto status = p.wait(timeout)) return *status;
    p.signal(SIGKILL);
    p.wait(std::chrono::seconds(10));
    throw std::runtime_error("process did not finish within the timeout");
}

}  // namespace test_support
