// The sd_notify protocol without libsystemd: each notification is one
// datagram on the AF_UNIX socket $NOTIFY_SOCKET names (a path, or '@' for
// the abstract namespace), and nothing at all without it; the watchdog
// interval is half of WATCHDOG_USEC when WATCHDOG_PID is unset or ours.

#include "app/systemd_notify.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace {

using namespace std::chrono_literals;

// Sets (or, with nullptr, unsets) an environment variable for one test.
class scoped_env {
public:
    scoped_env(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~scoped_env() {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

// A datagram socket standing in for systemd's, bound to `name` (a path, or
// '@...' for the abstract namespace), non-blocking so a missing message
// reads as empty instead of hanging.
class notify_listener {
public:
    explicit notify_listener(const std::string& name) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path, name.data(), name.size());
        if (name[0] == '@') address.sun_path[0] = '\0';
        const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
        if (::bind(fd_, reinterpret_cast<const sockaddr*>(&address), length) != 0)
            throw std::runtime_error("bind " + name + ": " + std::strerror(errno));
    }
    ~notify_listener() { ::close(fd_); }
    notify_listener(const notify_listener&) = delete;
    notify_listener& operator=(const notify_listener&) = delete;

    // The next datagram already sent (sendto has returned), or "" if none.
    std::string next() {
        char buffer[4096];
        const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
        return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
    }

private:
    int fd_ = -1;
};

TEST(SystemdNotify, SendsEachNotificationAsOneDatagramToThePathInNotifySocket) {
    isync::test::temp_dir dir;
    const std::string path = dir.file("notify");
    notify_listener systemd(path);
    const scoped_env socket("NOTIFY_SOCKET", path.c_str());
    isync::app::notify_ready("polling");
    isync::app::notify_status("3 of 10 pairs synced");
    isync::app::notify_watchdog();
    isync::app::notify_extend_start(30s, "upgrading");
    isync::app::notify_stopping();
    EXPECT_EQ(systemd.next(), "READY=1\nSTATUS=polling");
    EXPECT_EQ(systemd.next(), "STATUS=3 of 10 pairs synced");
    EXPECT_EQ(systemd.next(), "WATCHDOG=1");
    EXPECT_EQ(systemd.next(), "EXTEND_TIMEOUT_USEC=30000000\nSTATUS=upgrading");
    EXPECT_EQ(systemd.next(), "STOPPING=1");
    EXPECT_EQ(systemd.next(), "");
}

TEST(SystemdNotify, ReachesAnAbstractSocket) {
    const std::string name = "@isync-notify-test-" + std::to_string(::getpid());
    notify_listener systemd(name);
    const scoped_env socket("NOTIFY_SOCKET", name.c_str());
    isync::app::notify_ready("one pass over every pair");
    EXPECT_EQ(systemd.next(), "READY=1\nSTATUS=one pass over every pair");
}

TEST(SystemdNotify, WithoutNotifySocketNothingIsSent) {
    isync::test::temp_dir dir;
    notify_listener systemd(dir.file("notify"));
    const scoped_env socket("NOTIFY_SOCKET", nullptr);
    isync::app::notify_ready("polling");
    EXPECT_EQ(systemd.next(), "");
}

TEST(SystemdNotify, PingsTheWatchdogAtHalfItsIntervalWhenItIsMeantForThisProcess) {
    const std::string ours = std::to_string(::getpid());
    {
        const scoped_env usec("WATCHDOG_USEC", "30000000");
        const scoped_env pid("WATCHDOG_PID", nullptr);
        EXPECT_EQ(isync::app::watchdog_ping_interval(), std::chrono::microseconds(15s));
    }
    {
        const scoped_env usec("WATCHDOG_USEC", "30000000");
        const scoped_env pid("WATCHDOG_PID", ours.c_str());
        EXPECT_EQ(isync::app::watchdog_ping_interval(), std::chrono::microseconds(15s));
    }
    {
        const scoped_env usec("WATCHDOG_USEC", "30000000");
        const scoped_env pid("WATCHDOG_PID", "1");  // the watchdog is another process's
        EXPECT_EQ(isync::app::watchdog_ping_interval(), std::nullopt);
    }
    for (const char* refused : {"0", "", "12abc", "-5"}) {
        const scoped_env usec("WATCHDOG_USEC", refused);
        EXPECT_EQ(isync::app::watchdog_ping_interval(), std::nullopt) << "WATCHDOG_USEC=" << refused;
    }
    const scoped_env usec("WATCHDOG_USEC", nullptr);
    EXPECT_EQ(isync::app::watchdog_ping_interval(), std::nullopt);
}

}  // namespace
