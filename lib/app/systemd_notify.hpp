#pragma once
// sd_notify(3) for Type=notify: READY=1, STATUS=..., STOPPING=1, WATCHDOG=1,
// EXTEND_TIMEOUT_USEC=....
// Every call is a no-op when not started by systemd (no $NOTIFY_SOCKET).

#include <chrono>
#include <optional>
#include <string_view>

namespace isync::app {

void notify_ready(std::string_view status);
void notify_status(std::string_view status);
void notify_stopping();
void notify_watchdog();
// EXTEND_TIMEOUT_USEC: the start (before READY=1) needs `more` beyond now,
// with STATUS=`status` (a long schema upgrade must not be killed by
// TimeoutStartSec and restarted from its beginning).
void notify_extend_start(std::chrono::microseconds more, std::string_view status);

// Half the WatchdogSec interval when systemd asked for pings, else nullopt.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

}  // namespace isync::app
