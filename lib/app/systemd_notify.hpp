#pragma once
// sd_notify(3) for Type=notify: READY=1, STATUS=..., STOPPING=1, WATCHDOG=1.
// Every call is a no-op when not started by systemd (no $NOTIFY_SOCKET).

#include <chrono>
#include <optional>
#include <string_view>

namespace isync::app {

void notify_ready(std::string_view status);
void notify_status(std::string_view status);
void notify_stopping();
void notify_watchdog();

// Half the WatchdogSec interval when systemd asked for pings, else nullopt.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

}  // namespace isync::app
