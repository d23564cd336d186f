// peak-rss REPORT PROGRAM [ARGS...]: runs PROGRAM as a child, writes its peak
// resident set in KiB (ru_maxrss) to the file REPORT once it has exited, and
// exits with its status (128 + N when signal N killed it). SIGTERM, SIGINT
// and SIGHUP are passed on; if the launcher dies, the child gets SIGKILL.
//
// Why a launcher at all: Linux folds the peak RSS of the address space a
// process had when it called execve into the new program's ru_maxrss. A child
// spawned straight from a test binary (posix_spawn shares the parent's memory
// until the exec; fork copies it) therefore reports the test's own footprint
// whenever that is the larger. Forked from this small process instead, the
// program starts from a few hundred KiB, so ru_maxrss is its own figure.

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace {

volatile sig_atomic_t child = 0;

void pass_on(int signo) {
    if (child > 0) ::kill(child, signo);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: peak-rss REPORT PROGRAM [ARGS...]\n");
        return 64;
    }
    const int forwarded[] = {SIGTERM, SIGINT, SIGHUP};
    // Blocked until the child's pid is known, so a signal sent right after
    // the start is passed on rather than lost.
    sigset_t block, previous;
    sigemptyset(&block);
    for (int s : forwarded) sigaddset(&block, s);
    sigprocmask(SIG_BLOCK, &block, &previous);
    struct sigaction sa {};
    sa.sa_handler = pass_on;
    for (int s : forwarded) sigaction(s, &sa, nullptr);

    const pid_t launcher = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        std::fprintf(stderr, "peak-rss: fork: %s\n", std::strerror(errno));
        return 71;
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != launcher) ::_exit(127);  // the launcher died before prctl
        sigprocmask(SIG_SETMASK, &previous, nullptr);
        ::execv(argv[2], argv + 2);
        std::fprintf(stderr, "peak-rss: cannot run %s: %s\n", argv[2], std::strerror(errno));
        ::_exit(127);
    }
    child = pid;
    sigprocmask(SIG_SETMASK, &previous, nullptr);

    int status = 0;
    rusage usage{};
    while (::wait4(pid, &status, 0, &usage) < 0) {
        if (errno != EINTR) {
            std::fprintf(stderr, "peak-rss: wait4: %s\n", std::strerror(errno));
            return 71;
        }
    }
    if (std::FILE* report = std::fopen(argv[1], "w")) {
        std::fprintf(report, "%ld\n", usage.ru_maxrss);
        std::fclose(report);
    } else {
        std::fprintf(stderr, "peak-rss: cannot write %s: %s\n", argv[1], std::strerror(errno));
        return 73;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
