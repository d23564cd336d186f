#include "app/systemd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace isync::app {

void notify_ready(std::string_view status) { sd_notify(0, ("READY=1\nSTATUS=" + std::string(status)).c_str()); }

void notify_status(std::string_view status) { sd_notify(0, ("STATUS=" + std::string(status)).c_str()); }

void notify_stopping() { sd_notify(0, "STOPPING=1"); }

void notify_watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_ping_interval() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
    return std::chrono::microseconds(usec / 2);
}

}  // namespace isync::app
