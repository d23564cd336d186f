#include "app/systemd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace isync::app {

namespace {

// sd_notify(3)'s protocol as systemd documents it: one datagram to the
// AF_UNIX socket $NOTIFY_SOCKET names ('@' first: the abstract namespace).
// Written out here rather than linked: libsystemd maps six more libraries,
// about 1 MB of resident memory, for these few lines. A `vsock:` address
// (systemd 254+, for virtual machines) is not spoken: no notification, as
// when not started by systemd.
void send_notification(const std::string& message) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@')) return;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::size_t length = std::strlen(path);
    if (length < 2 || length >= sizeof(address.sun_path)) return;
    std::memcpy(address.sun_path, path, length);
    if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    const auto address_length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
    (void)::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&address),
                   address_length);
    ::close(fd);
}

std::optional<std::uint64_t> environment_number(const char* name) {
    const char* text = std::getenv(name);
    if (!text) return std::nullopt;
    std::uint64_t value = 0;
    const auto* end = text + std::strlen(text);
    const auto [ptr, ec] = std::from_chars(text, end, value);
    if (ec != std::errc() || ptr != end || ptr == text) return std::nullopt;
    return value;
}

}  // namespace

void notify_ready(std::string_view status) { send_notification("READY=1\nSTATUS=" + std::string(status)); }

void notify_status(std::string_view status) { send_notification("STATUS=" + std::string(status)); }

void notify_stopping() { send_notification("STOPPING=1"); }

void notify_watchdog() { send_notification("WATCHDOG=1"); }

void notify_extend_start(std::chrono::microseconds more, std::string_view status) {
    send_notification("EXTEND_TIMEOUT_USEC=" + std::to_string(more.count()) + "\nSTATUS=" + std::string(status));
}

std::optional<std::chrono::microseconds> watchdog_ping_interval() {
    // As sd_watchdog_enabled(3): WATCHDOG_USEC, meant for this process when
    // WATCHDOG_PID is unset or names it.
    const auto usec = environment_number("WATCHDOG_USEC");
    if (!usec || *usec == 0) return std::nullopt;
    if (std::getenv("WATCHDOG_PID")) {
        const auto pid = environment_number("WATCHDOG_PID");
        if (!pid || *pid != static_cast<std::uint64_t>(::getpid())) return std::nullopt;
    }
    return std::chrono::microseconds(*usec / 2);
}

}  // namespace isync::app
