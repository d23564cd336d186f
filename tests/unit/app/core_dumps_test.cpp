// keep_secrets_out_of_core_dumps, in a forked child (it changes the whole
// process): afterwards the process is not dumpable and may write no core.
// The running daemon's own limit is checked in Daemon.ARunningDaemonMakesNoCoreDump.
#include "app/core_dumps.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <string>

namespace {

std::string dump_settings() {
    rlimit core{};
    ::getrlimit(RLIMIT_CORE, &core);
    return "dumpable " + std::to_string(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) + ", core " +
           std::to_string(core.rlim_cur) + "/" + std::to_string(core.rlim_max);
}

TEST(CoreDumps, AfterwardsTheProcessIsNotDumpableAndMayWriteNoCore) {
    const auto before = isync::test::run_isolated([](std::string& out) { out = dump_settings(); });
    const auto after = isync::test::run_isolated([](std::string& out) {
        const bool done = isync::app::keep_secrets_out_of_core_dumps();
        out = (done ? "done; " : "refused; ") + dump_settings();
    });
    ASSERT_FALSE(after.crashed) << after.how;
    EXPECT_EQ(after.output, "done; dumpable 0, core 0/0");
    EXPECT_NE(before.output, "dumpable 0, core 0/0")
        << "the test's own process was already so: the check proves nothing";
}

}  // namespace
