// The command line: every command, every option, and errc::usage for every mistake.

#include "app/arguments.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using isync::errc;
using isync::app::arguments;
using isync::app::command;
using isync::app::parse_arguments;
using isync::test::contains;

namespace {

const std::string default_config = "/etc/incident-sync/incident-sync.yaml";

isync::result<arguments> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "incident-syncd");
    return parse_arguments(args);
}

// Fails with errc::usage and a message containing `needle`.
::testing::AssertionResult usage_error(const isync::result<arguments>& r, std::string_view needle) {
    if (r) return ::testing::AssertionFailure() << "parsed, but a usage error was expected";
    if (r.error().code != errc::usage)
        return ::testing::AssertionFailure()
               << "error code " << static_cast<int>(r.error().code) << ", not errc::usage: " << r.error().message;
    return contains(r.error().message, needle);
}

}  // namespace

TEST(Arguments, EveryCommand) {
    struct row {
        const char* word;
        command cmd;
    };
    for (const row r : {row{"run", command::run}, row{"once", command::once}, row{"status", command::status},
                        row{"check-config", command::check_config}}) {
        SCOPED_TRACE(r.word);
        const auto a = parse({r.word});
        ASSERT_TRUE(a) << a.error().message;
        EXPECT_EQ(a->cmd, r.cmd);
        EXPECT_EQ(a->config_path, default_config);
        EXPECT_FALSE(a->log_level);
        EXPECT_FALSE(a->json);
        EXPECT_FALSE(a->check);
    }
}

TEST(Arguments, ConfigInEveryForm) {
    for (const std::vector<std::string>& argv :
         {std::vector<std::string>{"run", "--config", "/tmp/a.yaml"},
          std::vector<std::string>{"run", "-c", "/tmp/a.yaml"}, std::vector<std::string>{"run", "--config=/tmp/a.yaml"},
          std::vector<std::string>{"--config", "/tmp/a.yaml", "run"}}) {
        SCOPED_TRACE(testing::Message() << argv.size() << " words, " << argv[0] << ' ' << argv[1]);
        const auto a = parse(argv);
        ASSERT_TRUE(a) << a.error().message;
        EXPECT_EQ(a->cmd, command::run);
        EXPECT_EQ(a->config_path, "/tmp/a.yaml");
    }
}

TEST(Arguments, ConfigValueMayContainAnEqualsSign) {
    const auto a = parse({"once", "--config=/tmp/x=y.yaml"});
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->config_path, "/tmp/x=y.yaml");
}

TEST(Arguments, LastConfigWins) {
    const auto a = parse({"once", "-c", "/tmp/a.yaml", "--config", "/tmp/b.yaml"});
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->config_path, "/tmp/b.yaml");
}

TEST(Arguments, MissingValueAfterConfigIsAUsageError) {
    EXPECT_TRUE(usage_error(parse({"run", "--config"}), "--config needs a value"));
    EXPECT_TRUE(usage_error(parse({"run", "-c"}), "--config needs a value"));
}

TEST(Arguments, EmptyConfigValueIsAUsageError) {
    // `--log-level=` is refused; `--config=` must be too, not turned into an empty path.
    EXPECT_TRUE(usage_error(parse({"run", "--config="}), "--config"));
}

TEST(Arguments, LogLevel) {
    const auto a = parse({"run", "--log-level", "debug"});
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_TRUE(a->log_level);
    EXPECT_EQ(*a->log_level, "debug");

    const auto b = parse({"once", "--log-level=trace"});
    ASSERT_TRUE(b) << b.error().message;
    ASSERT_TRUE(b->log_level);
    EXPECT_EQ(*b->log_level, "trace");

    EXPECT_TRUE(usage_error(parse({"run", "--log-level"}), "--log-level needs a value"));
    EXPECT_TRUE(usage_error(parse({"run", "--log-level="}), "--log-level needs a value"));
}

TEST(Arguments, JsonAndCheckBelongToStatus) {
    const auto a = parse({"status", "--json", "--check"});
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->cmd, command::status);
    EXPECT_TRUE(a->json);
    EXPECT_TRUE(a->check);

    const auto b = parse({"--check", "status"});
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_TRUE(b->check);
    EXPECT_FALSE(b->json);

    for (const char* cmd : {"run", "once", "check-config"}) {
        SCOPED_TRACE(cmd);
        EXPECT_TRUE(usage_error(parse({cmd, "--json"}), "status"));
        EXPECT_TRUE(usage_error(parse({cmd, "--check"}), "status"));
    }
}

TEST(Arguments, UnknownCommandListsTheCommands) {
    const auto r = parse({"sync"});
    EXPECT_TRUE(usage_error(r, "\"sync\""));
    for (const char* cmd : {"run", "once", "status", "check-config"}) EXPECT_TRUE(usage_error(r, cmd));
}

TEST(Arguments, MissingCommandIsAUsageError) {
    const auto r = parse({});
    EXPECT_TRUE(usage_error(r, "no command"));
    for (const char* cmd : {"run", "once", "status", "check-config"}) EXPECT_TRUE(usage_error(r, cmd));
    EXPECT_TRUE(usage_error(parse({"--config", "/tmp/a.yaml"}), "no command"));
}

TEST(Arguments, UnknownOptionAndSecondCommandAreUsageErrors) {
    EXPECT_TRUE(usage_error(parse({"run", "--verbose"}), "\"--verbose\""));
    EXPECT_TRUE(usage_error(parse({"run", "once"}), "\"once\""));
    EXPECT_TRUE(usage_error(parse({"run", "-x"}), "\"-x\""));
}

TEST(Arguments, EveryUsageErrorPointsAtHelp) {
    for (const std::vector<std::string>& argv :
         {std::vector<std::string>{}, std::vector<std::string>{"nope"}, std::vector<std::string>{"run", "--config"},
          std::vector<std::string>{"once", "--json"}, std::vector<std::string>{"run", "--bogus"}}) {
        EXPECT_TRUE(usage_error(parse(argv), "--help"));
    }
}

TEST(Arguments, HelpAndVersion) {
    for (const char* flag : {"--help", "-h"}) {
        const auto a = parse({flag});
        ASSERT_TRUE(a) << a.error().message;
        EXPECT_EQ(a->cmd, command::help);
    }
    // --help wins wherever it appears, even after a command.
    const auto b = parse({"run", "--help"});
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(b->cmd, command::help);

    const auto v = parse({"--version"});
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(v->cmd, command::version);
    const auto w = parse({"status", "--version"});
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ(w->cmd, command::version);
}

TEST(Arguments, UsageTextNamesEveryCommandAndOption) {
    const std::string text = isync::app::usage_text();
    for (const char* word : {"run", "once", "status", "check-config", "--config", "--log-level", "--json", "--check",
                             "--help", "--version", "64", "75", "78"})
        EXPECT_TRUE(contains(text, word));
}
