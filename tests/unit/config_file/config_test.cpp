#include "config_file/loader.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using isync::config::load_config_file;
using isync::config::load_config_text;

namespace {

// Every test needs a pair or it fails for that reason instead of its own.
constexpr std::string_view one_pair = "sync:\n  pairs:\n    - { app_id: PXabc123, tld: example.com }\n";

class Config : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "isync-config-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path write(const fs::path& relative, std::string_view text) {
        const fs::path file = dir_ / relative;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text;
        return file;
    }

    // The message for `yaml` read as /etc/x.yaml; empty (and a failure) if it loads.
    static std::string error_for(std::string_view yaml) {
        const auto loaded = load_config_text(yaml, "/etc/x.yaml");
        EXPECT_FALSE(loaded.has_value()) << "loaded without error:\n" << yaml;
        if (loaded) return {};
        EXPECT_EQ(loaded.error().code, isync::errc::config);
        return loaded.error().message;
    }

    static isync::config::config load_ok(std::string_view yaml) {
        auto loaded = load_config_text(yaml, "/etc/x.yaml");
        if (!loaded) ADD_FAILURE() << loaded.error().message;
        return loaded ? *loaded : isync::config::config{};
    }

    fs::path dir_;
};

const fs::path example_file = fs::path(__FILE__).parent_path() / "../../../config/incident-sync.yaml";

// ------------------------------------------------------------------ good files

TEST_F(Config, ExampleLoads) {
    const auto loaded = load_config_file(example_file);
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->source, example_file);
    ASSERT_EQ(loaded->sync.pairs.size(), 1u);
    EXPECT_EQ(loaded->sync.pairs[0], (isync::config::pair{"PXabc123", "example.com"}));
    // The shipped unit hands the token over as a credential; a token_file here
    // would name root's copy, which the unit's user cannot read.
    EXPECT_EQ(loaded->api.token_file, "");
}

// The example says "shown with its default value"; keep it honest.
TEST_F(Config, ExampleShowsTheDefaults) {
    const auto loaded = load_config_file(example_file);
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    const isync::config::config defaults;
    const auto& c = *loaded;
    EXPECT_EQ(c.api.base_url, defaults.api.base_url);
    EXPECT_EQ(c.api.ca_file, defaults.api.ca_file);
    EXPECT_EQ(c.api.timeout, defaults.api.timeout);
    EXPECT_EQ(c.api.page_size, defaults.api.page_size);
    EXPECT_EQ(c.api.max_body, defaults.api.max_body);
    EXPECT_EQ(c.api.proxy, defaults.api.proxy);
    EXPECT_EQ(c.api.insecure_skip_tls_verify, defaults.api.insecure_skip_tls_verify);
    EXPECT_EQ(c.retry.max_attempts, defaults.retry.max_attempts);
    EXPECT_EQ(c.retry.base_delay, defaults.retry.base_delay);
    EXPECT_EQ(c.retry.max_delay, defaults.retry.max_delay);
    EXPECT_EQ(c.sync.interval, defaults.sync.interval);
    EXPECT_EQ(c.sync.initial_lookback, defaults.sync.initial_lookback);
    EXPECT_EQ(c.sync.overlap, defaults.sync.overlap);
    EXPECT_EQ(c.sync.settle, defaults.sync.settle);
    EXPECT_EQ(c.sync.max_window, defaults.sync.max_window);
    EXPECT_EQ(c.sync.concurrency, defaults.sync.concurrency);
    EXPECT_EQ(c.database.path, defaults.database.path);
    EXPECT_EQ(c.database.busy_timeout, defaults.database.busy_timeout);
    EXPECT_EQ(c.log.level, defaults.log.level);
    EXPECT_EQ(c.log.format, defaults.log.format);
    EXPECT_EQ(c.metrics.listen, defaults.metrics.listen);
}

TEST_F(Config, DefaultsWhenKeysOmitted) {
    const auto c = load_ok(one_pair);
    EXPECT_EQ(c.api.base_url, "https://api-gw.perimeterx.com");
    EXPECT_EQ(c.api.token_file, "");
    EXPECT_EQ(c.api.ca_file, "");
    EXPECT_EQ(c.api.timeout, 30s);
    EXPECT_EQ(c.api.page_size, 50);
    EXPECT_EQ(c.api.max_body, 64u << 20);
    EXPECT_EQ(c.api.proxy, "");
    EXPECT_FALSE(c.api.insecure_skip_tls_verify);
    EXPECT_EQ(c.retry.max_attempts, 6);
    EXPECT_EQ(c.retry.base_delay, 500ms);
    EXPECT_EQ(c.retry.max_delay, 60s);
    EXPECT_EQ(c.sync.interval, 5min);
    EXPECT_EQ(c.sync.initial_lookback, 24h);
    EXPECT_EQ(c.sync.overlap, 15min);
    EXPECT_EQ(c.sync.settle, 1min);
    EXPECT_EQ(c.sync.max_window, 31 * 24h);  // an upper bound now: slices are planned by sync.slice_incidents
    EXPECT_EQ(c.sync.slice_incidents, 5000);
    EXPECT_EQ(c.api.max_in_flight, 8);
    EXPECT_EQ(c.sync.concurrency, 4);
    EXPECT_EQ(c.database.path, "/var/lib/incident-sync/incidents.db");
    EXPECT_EQ(c.database.busy_timeout, 5s);
    EXPECT_EQ(c.log.level, "info");
    EXPECT_EQ(c.log.format, "text");
    EXPECT_EQ(c.metrics.listen, "127.0.0.1:9464");
    EXPECT_EQ(c.source, "/etc/x.yaml");
}

TEST_F(Config, ReadsEveryKey) {
    const fs::path ca = write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    const std::string yaml = R"(
api:
  base_url: https://gw.example.net:8443/prefix/
  token_file: /run/token
  ca_file: )" + ca.string() + R"(
  timeout: 10s
  page_size: 1000
  max_body: 2MiB
  proxy: http://proxy.local:3128
  insecure_skip_tls_verify: true
retry:
  max_attempts: 1
  base_delay: 1s
  max_delay: 1s
sync:
  interval: 1m
  initial_lookback: 7d
  overlap: 0s
  settle: 0s
  max_window: 30m
  concurrency: 64
  pairs:
    - { app_id: A1, tld: a.com }
    - app_id: A1
      tld: b.com
database:
  path: /tmp/x.db
  busy_timeout: 250ms
log:
  level: trace
  format: json
metrics:
  listen: "[::1]:9100"
)";
    const auto c = load_ok(yaml);
    EXPECT_EQ(c.api.base_url, "https://gw.example.net:8443/prefix");
    EXPECT_EQ(c.api.token_file, "/run/token");
    EXPECT_EQ(c.api.ca_file, ca.string());
    EXPECT_EQ(c.api.timeout, 10s);
    EXPECT_EQ(c.api.page_size, 1000);
    EXPECT_EQ(c.api.max_body, 2u << 20);
    EXPECT_EQ(c.api.proxy, "http://proxy.local:3128");
    EXPECT_TRUE(c.api.insecure_skip_tls_verify);
    EXPECT_EQ(c.retry.max_attempts, 1);
    EXPECT_EQ(c.retry.base_delay, 1s);
    EXPECT_EQ(c.retry.max_delay, 1s);
    EXPECT_EQ(c.sync.interval, 1min);
    EXPECT_EQ(c.sync.initial_lookback, 7 * 24h);
    EXPECT_EQ(c.sync.overlap, 0s);
    EXPECT_EQ(c.sync.settle, 0s);
    EXPECT_EQ(c.sync.max_window, 30min);
    EXPECT_EQ(c.sync.concurrency, 64);
    ASSERT_EQ(c.sync.pairs.size(), 2u);
    EXPECT_EQ(c.sync.pairs[0], (isync::config::pair{"A1", "a.com"}));
    EXPECT_EQ(c.sync.pairs[1], (isync::config::pair{"A1", "b.com"}));
    EXPECT_EQ(c.database.path, "/tmp/x.db");
    EXPECT_EQ(c.database.busy_timeout, 250ms);
    EXPECT_EQ(c.log.level, "trace");
    EXPECT_EQ(c.log.format, "json");
    EXPECT_EQ(c.metrics.listen, "[::1]:9100");
}

TEST_F(Config, EmptySectionsKeepDefaults) {
    const auto c = load_ok(std::string("api:\nlog:\n") + std::string(one_pair));
    EXPECT_EQ(c.api.page_size, 50);
    EXPECT_EQ(c.log.level, "info");
}

TEST_F(Config, MaxBodyAcceptsBytesAndBinaryUnits) {
    const auto with = [&](std::string_view size) {
        return load_ok("api:\n  max_body: " + std::string(size) + "\n" + std::string(one_pair)).api.max_body;
    };
    EXPECT_EQ(with("1048576"), 1048576u);
    EXPECT_EQ(with("512KiB"), 512u << 10);
    EXPECT_EQ(with("1GiB"), 1u << 30);
    EXPECT_EQ(error_for("api:\n  max_body: 64MB\n" + std::string(one_pair)),
              "/etc/x.yaml:2:13: api.max_body: \"64MB\" is not a size; "
              "write a number of bytes, optionally with KiB, MiB or GiB (e.g. 64MiB)");
    EXPECT_EQ(error_for("api:\n  max_body: 8GiB\n" + std::string(one_pair)),
              "/etc/x.yaml:2:13: api.max_body: \"8GiB\" is out of range; write a size from 1KiB to 4GiB");
}

TEST_F(Config, MetricsListenMayBeEmptyToDisable) {
    EXPECT_EQ(load_ok("metrics:\n  listen: \"\"\n" + std::string(one_pair)).metrics.listen, "");
    EXPECT_EQ(error_for("metrics:\n  listen: 9464\n" + std::string(one_pair)),
              "/etc/x.yaml:2:11: metrics.listen: \"9464\" is not host:port; "
              "write host:port (e.g. 127.0.0.1:9464; :9464 for all interfaces), or \"\" to disable metrics");
    EXPECT_EQ(load_ok("metrics:\n  listen: \":9464\"\n" + std::string(one_pair)).metrics.listen, ":9464");
    EXPECT_EQ(load_ok("metrics:\n  listen: 127.0.0.1:0\n" + std::string(one_pair)).metrics.listen, "127.0.0.1:0");
}

// The loader hands on typed values, made by the one parser of each kind
// (config/addresses.hpp) that the HTTP client and the ops server take.
TEST_F(Config, AddressesAreParsedOnceIntoTypedValues) {
    const auto c = load_ok(
        "api:\n  base_url: https://[::1]:8443/p/\n  proxy: http://proxy.local:3128\n"
        "metrics:\n  listen: localhost:9464\n" +
        std::string(one_pair));
    EXPECT_EQ(c.api.base, (isync::config::endpoint{"::1", 8443, "/p"}));
    ASSERT_TRUE(c.api.proxy_address);
    EXPECT_EQ(*c.api.proxy_address, (isync::config::proxy_endpoint{"proxy.local", 3128}));
    ASSERT_TRUE(c.metrics.address);
    EXPECT_EQ(*c.metrics.address, (isync::config::listen_address{"127.0.0.1", 9464}));
    const auto all = load_ok("metrics:\n  listen: \":9100\"\n" + std::string(one_pair));
    EXPECT_EQ(*all.metrics.address, (isync::config::listen_address{"0.0.0.0", 9100}));
    const auto off = load_ok("metrics:\n  listen: \"\"\n" + std::string(one_pair));
    EXPECT_FALSE(off.metrics.address);
    const isync::config::config defaults;
    EXPECT_EQ(defaults.api.base, isync::config::parse_base_url(defaults.api.base_url).value());
    EXPECT_EQ(*defaults.metrics.address, isync::config::parse_listen_address(defaults.metrics.listen).value());
}

// `run` used to refuse these after `check-config` had said ok.
TEST_F(Config, AListenHostMustBeAnAddressOrLocalhost) {
    EXPECT_EQ(error_for("metrics:\n  listen: metrics.example:9464\n" + std::string(one_pair)),
              "/etc/x.yaml:2:11: metrics.listen: \"metrics.example:9464\" does not name an IP address or localhost "
              "(host names are not resolved); write host:port (e.g. 127.0.0.1:9464; :9464 for all interfaces), or "
              "\"\" to disable metrics");
    EXPECT_FALSE(load_config_text("metrics:\n  listen: \"::1:9464\"\n" + std::string(one_pair), "x").has_value());
}

// ------------------------------------------------------------------ paths

TEST_F(Config, RelativePathsResolveAgainstTheConfigDirectory) {
    write("etc/ca.pem", "pem");
    const fs::path file = write("etc/sync.yaml",
                                "api:\n  token_file: secrets/token\n  ca_file: ca.pem\n"
                                "database:\n  path: ../data/incidents.db\n" +
                                    std::string(one_pair));
    const auto loaded = load_config_file(file);
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    EXPECT_EQ(loaded->database.path, (dir_ / "data/incidents.db").string());
    EXPECT_EQ(loaded->api.token_file, (dir_ / "etc/secrets/token").string());
    EXPECT_EQ(loaded->api.ca_file, (dir_ / "etc/ca.pem").string());
    EXPECT_EQ(loaded->source, file);
}

TEST_F(Config, AbsoluteAndInMemoryDatabasePathsAreKept) {
    EXPECT_EQ(load_ok("database:\n  path: /srv/x.db\n" + std::string(one_pair)).database.path, "/srv/x.db");
    EXPECT_EQ(load_ok("database:\n  path: \":memory:\"\n" + std::string(one_pair)).database.path, ":memory:");
}

TEST_F(Config, CaFileMustExist) {
    const std::string yaml = "api:\n  ca_file: " + (dir_ / "nope.pem").string() + "\n" + std::string(one_pair);
    EXPECT_EQ(error_for(yaml), "/etc/x.yaml:2:12: api.ca_file: " + (dir_ / "nope.pem").string() +
                                   " does not exist; give the path of a PEM CA bundle, or \"\" to use only the "
                                   "system store");
}

TEST_F(Config, UnreadableFileNamesPathAndReason) {
    const auto missing = load_config_file(dir_ / "missing.yaml");
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().code, isync::errc::config);
    EXPECT_EQ(missing.error().message,
              "cannot read config file " + (dir_ / "missing.yaml").string() + ": No such file or directory");

    const auto directory = load_config_file(dir_);
    ASSERT_FALSE(directory.has_value());
    EXPECT_EQ(directory.error().message, "cannot read config file " + dir_.string() + ": Is a directory");
}

// ------------------------------------------------------------------ errors

TEST_F(Config, BadDurationNamesFileLineColumnAndKey) {
    const std::string yaml =
        "api:\n"
        "  timeout: 30s\n"
        "retry:\n"
        "  max_attempts: 3\n"
        "sync:\n"
        "  pairs: [{ app_id: A, tld: a.com }]\n"
        "  interval: \"5 minutes\"\n";
    EXPECT_EQ(error_for(yaml),
              "/etc/x.yaml:7:13: sync.interval: \"5 minutes\" is not a duration; "
              "write an integer and a unit: ms, s, m, h or d (e.g. 30s, 5m)");
}

TEST_F(Config, ZeroIntervalIsRefusedButZeroSettleIsAllowed) {
    EXPECT_EQ(error_for("sync:\n  interval: 0s\n  pairs: [{ app_id: A, tld: a.com }]\n"),
              "/etc/x.yaml:2:13: sync.interval: \"0s\" is zero; write a duration greater than zero (e.g. 30s, 5m)");
    EXPECT_EQ(load_ok("sync:\n  settle: 0s\n  pairs: [{ app_id: A, tld: a.com }]\n").sync.settle, 0s);
}

TEST_F(Config, UnknownKeySuggestsTheNearest) {
    EXPECT_EQ(error_for("sync:\n  intervall: 5m\n  pairs: [{ app_id: A, tld: a.com }]\n"),
              "/etc/x.yaml:2:3: sync.intervall: unknown key; did you mean \"interval\"?");
    EXPECT_EQ(error_for("databse:\n  path: x.db\n" + std::string(one_pair)),
              "/etc/x.yaml:1:1: databse: unknown key; did you mean \"database\"?");
    EXPECT_EQ(error_for("sync:\n  pairs: [{ app_id: A, tdl: a.com }]\n"),
              "/etc/x.yaml:2:24: sync.pairs[0].tdl: unknown key; did you mean \"tld\"?");
}

TEST_F(Config, UnknownKeyListsTheSectionWhenNothingIsClose) {
    EXPECT_EQ(error_for("api:\n  colour: blue\n" + std::string(one_pair)),
              "/etc/x.yaml:2:3: api.colour: unknown key; valid keys are base_url, token_file, ca_file, timeout, "
              "page_size, max_body, proxy, proxy_password_file, insecure_skip_tls_verify, max_in_flight");
}

TEST_F(Config, ListWhereAValueBelongs) {
    EXPECT_EQ(error_for("api:\n  timeout: [30s]\n" + std::string(one_pair)),
              "/etc/x.yaml:2:12: api.timeout: expected a duration, found a list; "
              "write an integer and a unit: ms, s, m, h or d (e.g. 30s, 5m)");
}

TEST_F(Config, NotAnInteger) {
    EXPECT_EQ(error_for("api:\n  page_size: abc\n" + std::string(one_pair)),
              "/etc/x.yaml:2:14: api.page_size: \"abc\" is not an integer; write an integer from 1 to 1000");
}

TEST_F(Config, IntegerOutOfRange) {
    EXPECT_EQ(error_for("api:\n  page_size: 1001\n" + std::string(one_pair)),
              "/etc/x.yaml:2:14: api.page_size: \"1001\" is out of range; write an integer from 1 to 1000");
    EXPECT_EQ(error_for("retry:\n  max_attempts: 0\n" + std::string(one_pair)),
              "/etc/x.yaml:2:17: retry.max_attempts: \"0\" is out of range; write an integer of at least 1");
}

// A tiny page loads, with one warning that says what it costs and why.
TEST_F(Config, SmallPageSizeLoadsWithAWarningSayingWhy) {
    const auto c = load_ok("api:\n  page_size: 5\n" + std::string(one_pair));
    EXPECT_EQ(c.api.page_size, 5);
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_EQ(c.warnings[0],
              "/etc/x.yaml:2:14: api.page_size: 5 is small: each page after the first re-reads the last 2 ids of "
              "the page before it, to prove nothing was skipped, so 40% of what it fetches is read twice; "
              "write 10 or more (the default is 50)");
}

TEST_F(Config, PageSizeOfOneOrTwoWarnsInItsOwnWords) {
    const auto one = load_ok("api:\n  page_size: 1\n" + std::string(one_pair));
    ASSERT_EQ(one.warnings.size(), 1u);
    EXPECT_NE(one.warnings[0].find("api.page_size: 1 is small: a page of 1 cannot overlap"), std::string::npos)
        << one.warnings[0];
    const auto two = load_ok("api:\n  page_size: 2\n" + std::string(one_pair));
    ASSERT_EQ(two.warnings.size(), 1u);
    EXPECT_NE(two.warnings[0].find("re-reads the last id of the page before it"), std::string::npos) << two.warnings[0];
    EXPECT_NE(two.warnings[0].find("50% of what it fetches"), std::string::npos) << two.warnings[0];
}

TEST_F(Config, PageSizeOfTenOrTheDefaultHasNoWarning) {
    EXPECT_TRUE(load_ok("api:\n  page_size: 10\n" + std::string(one_pair)).warnings.empty());
    EXPECT_TRUE(load_ok("api:\n  page_size: 9\n" + std::string(one_pair)).warnings.size() == 1u);
    EXPECT_TRUE(load_ok(one_pair).warnings.empty());
    const auto example = load_config_file(example_file);
    ASSERT_TRUE(example.has_value()) << example.error().message;
    EXPECT_TRUE(example->warnings.empty());
}

// A file with an error reports only its errors; a warning is not mixed in with them.
TEST_F(Config, WarningsDoNotTurnIntoErrors) {
    EXPECT_EQ(error_for("api:\n  page_size: 5\n  timeout: 0s\n" + std::string(one_pair)),
              "/etc/x.yaml:3:12: api.timeout: \"0s\" is zero; write a duration greater than zero (e.g. 30s, 5m)");
}

TEST_F(Config, BadEnumListsAllowedValues) {
    EXPECT_EQ(error_for("log:\n  level: verbose\n" + std::string(one_pair)),
              "/etc/x.yaml:2:10: log.level: \"verbose\" is not a log level; "
              "write one of trace, debug, info, warn, error");
    EXPECT_EQ(error_for("log:\n  format: xml\n" + std::string(one_pair)),
              "/etc/x.yaml:2:11: log.format: \"xml\" is not a log format; write one of text, json");
}

TEST_F(Config, BooleanIsOnlyTrueOrFalse) {
    EXPECT_EQ(error_for("api:\n  insecure_skip_tls_verify: yes\n" + std::string(one_pair)),
              "/etc/x.yaml:2:29: api.insecure_skip_tls_verify: \"yes\" is not true or false; write true or false");
}

TEST_F(Config, BaseUrlMustBeHttps) {
    EXPECT_EQ(error_for("api:\n  base_url: http://api-gw.perimeterx.com\n" + std::string(one_pair)),
              "/etc/x.yaml:2:13: api.base_url: \"http://api-gw.perimeterx.com\" does not use https; "
              "write https://host[:port][/path]");
    EXPECT_EQ(error_for("api:\n  base_url: api-gw.perimeterx.com\n" + std::string(one_pair)),
              "/etc/x.yaml:2:13: api.base_url: \"api-gw.perimeterx.com\" is not a base URL; "
              "write https://host[:port][/path]");
}

TEST_F(Config, ProxyNeedsHttpSchemeAndPort) {
    EXPECT_EQ(error_for("api:\n  proxy: proxy.local\n" + std::string(one_pair)),
              "/etc/x.yaml:2:10: api.proxy: \"proxy.local\" is not a proxy URL; "
              "write http://host:port, or \"\" to use $https_proxy");
    // Credentials are taken (issue 16); the loaded text hides the password.
    const auto with_credentials =
        load_config_text("api:\n  proxy: http://u:p-canary@proxy.local:3128\n" + std::string(one_pair), "x");
    ASSERT_TRUE(with_credentials.has_value()) << with_credentials.error().message;
    EXPECT_EQ(with_credentials->api.proxy, "http://u:***@proxy.local:3128");
    ASSERT_TRUE(with_credentials->api.proxy_address.has_value());
    EXPECT_EQ(with_credentials->api.proxy_address->user, "u");
    EXPECT_EQ(with_credentials->api.proxy_address->password.reveal(), "p-canary");
}

TEST_F(Config, MissingPairs) {
    const std::string expected_tail =
        "sync.pairs: at least one {app_id, tld} pair is required; "
        "add a list under sync: (e.g. pairs: [{ app_id: PXabc123, tld: example.com }]), or set sync.discover: true "
        "to poll every pair the account lists";
    EXPECT_EQ(error_for("log:\n  level: info\n"), "/etc/x.yaml:1:1: " + expected_tail);
    EXPECT_EQ(error_for(""), "/etc/x.yaml:1:1: " + expected_tail);
    EXPECT_EQ(error_for("log:\n  level: info\nsync:\n  interval: 5m\n"), "/etc/x.yaml:3:1: " + expected_tail);
    EXPECT_EQ(error_for("sync:\n  pairs: []\n"), "/etc/x.yaml:2:10: " + expected_tail);
}

TEST_F(Config, DiscoveryNeedsNoPairsAndReadsItsKeys) {
    const auto cfg = load_ok(
        "sync:\n  discover: true\n  discover_interval: 10m\n  include: [\"PXa*/*\", \"*/shop.example\"]\n"
        "  exclude:\n    - \"*/staging.*\"\n");
    EXPECT_TRUE(cfg.sync.discover);
    EXPECT_TRUE(cfg.sync.pairs.empty());
    EXPECT_EQ(cfg.sync.discover_interval, 10min);
    EXPECT_EQ(cfg.sync.include, (std::vector<std::string>{"PXa*/*", "*/shop.example"}));
    EXPECT_EQ(cfg.sync.exclude, (std::vector<std::string>{"*/staging.*"}));
    // Off, pairs are required as ever.
    EXPECT_TRUE(error_for("sync:\n  discover: false\n").find("sync.pairs: at least one") != std::string::npos);
}

TEST_F(Config, ABrokenPairPatternNamesItsPlace) {
    EXPECT_EQ(error_for("sync:\n  discover: true\n  exclude: [\"*/ok.example\", \"staging.example\"]\n"),
              "/etc/x.yaml:3:29: sync.exclude[1]: a pattern is APP/DOMAIN (e.g. PXabc123/* or */*.example.com); "
              "this one has no '/'; write a list of APP/DOMAIN globs (e.g. [\"PXabc123/*\", \"*/*.example.com\"])");
    EXPECT_TRUE(error_for("sync:\n  discover: true\n  include: PXa/*\n").find("sync.include: expected a list") !=
                std::string::npos);
    EXPECT_TRUE(error_for("sync:\n  discover: true\n  discover_interval: 0s\n").find("sync.discover_interval") !=
                std::string::npos);
}

TEST_F(Config, PairNeedsAppIdAndTld) {
    EXPECT_EQ(error_for("sync:\n  pairs:\n    - { app_id: A }\n"),
              "/etc/x.yaml:3:7: sync.pairs[0].tld: missing; "
              "every pair needs a non-empty app_id and tld (e.g. { app_id: PXabc123, tld: example.com })");
    EXPECT_EQ(error_for("sync:\n  pairs:\n    - { app_id: A, tld: a.com }\n    - { app_id: \"\", tld: a.com }\n"),
              "/etc/x.yaml:4:17: sync.pairs[1].app_id: empty; "
              "every pair needs a non-empty app_id and tld (e.g. { app_id: PXabc123, tld: example.com })");
}

TEST_F(Config, DuplicatePairs) {
    const std::string yaml =
        "sync:\n"
        "  pairs:\n"
        "    - { app_id: A, tld: a.com }\n"
        "    - { app_id: B, tld: a.com }\n"
        "    - { app_id: A, tld: a.com }\n";
    EXPECT_EQ(error_for(yaml),
              "/etc/x.yaml:5:7: sync.pairs[2]: repeats sync.pairs[0] (app_id A, tld a.com); list each pair once");
}

TEST_F(Config, DuplicateKey) {
    EXPECT_EQ(error_for("log:\n  level: info\n  level: debug\n" + std::string(one_pair)),
              "/etc/x.yaml:3:3: log.level: given twice (first on line 2); write each key once");
}

TEST_F(Config, MaxDelayBelowBaseDelay) {
    EXPECT_EQ(error_for("retry:\n  base_delay: 2s\n  max_delay: 1s\n" + std::string(one_pair)),
              "/etc/x.yaml:3:14: retry.max_delay: 1s is less than retry.base_delay (2s); "
              "write a duration of at least 2s");
    EXPECT_EQ(error_for("retry:\n  base_delay: 2m\n" + std::string(one_pair)),
              "/etc/x.yaml:2:15: retry.base_delay: 2m is more than retry.max_delay (1m); "
              "write at most 1m or raise retry.max_delay");
}

TEST_F(Config, SectionThatIsNotAMap) {
    EXPECT_EQ(error_for("log: debug\n" + std::string(one_pair)),
              "/etc/x.yaml:1:6: log: expected a map, found a single value; "
              "indent the section's keys under it: level, format");
}

TEST_F(Config, SyntaxErrorReportsLineAndColumn) {
    const std::string yaml =
        "sync:\n"
        "  pairs: [{ app_id: A, tld: a.com }\n"
        "database:\n"
        "  path: x.db\n";
    EXPECT_EQ(error_for(yaml),
              "/etc/x.yaml:3:1: YAML syntax error: end of sequence flow not found; "
              "check the indentation, colons and quotes on this line and the one before");
}

TEST_F(Config, DeepNestingIsASyntaxErrorNotACrash) {
    const std::string message = error_for(std::string(5000, '[') + std::string(5000, ']'));
    EXPECT_EQ(message.rfind("/etc/x.yaml:", 0), 0u) << message;
    EXPECT_NE(message.find("nested too deeply"), std::string::npos) << message;
}

TEST_F(Config, SecondDocumentIsRefused) {
    EXPECT_EQ(error_for(std::string(one_pair) + "---\nlog:\n  level: debug\n"),
              "/etc/x.yaml:4:1: (document): a second YAML document starts here; the config file holds exactly one");
}

// yaml-cpp 0.7's LoadAll allocates without end on this (jbeder/yaml-cpp#1040).
TEST_F(Config, StrayCommaIsASyntaxErrorNotAHang) {
    EXPECT_EQ(error_for(","),
              "/etc/x.yaml:1:1: YAML syntax error: unexpected \",\"; "
              "check the indentation, colons and quotes on this line and the one before");
    EXPECT_EQ(error_for("- a\n,"),
              "/etc/x.yaml:2:1: YAML syntax error: unexpected \",\"; "
              "check the indentation, colons and quotes on this line and the one before");
}

TEST_F(Config, ReportsEveryErrorInDocumentOrder) {
    const std::string yaml =
        "api:\n"
        "  page_size: 0\n"
        "log:\n"
        "  levle: info\n"
        "  format: xml\n";
    EXPECT_EQ(error_for(yaml),
              "/etc/x.yaml:2:14: api.page_size: \"0\" is out of range; write an integer from 1 to 1000\n"
              "/etc/x.yaml:4:3: log.levle: unknown key; did you mean \"level\"?\n"
              "/etc/x.yaml:5:11: log.format: \"xml\" is not a log format; write one of text, json\n"
              "/etc/x.yaml:1:1: sync.pairs: at least one {app_id, tld} pair is required; "
              "add a list under sync: (e.g. pairs: [{ app_id: PXabc123, tld: example.com }]), or set "
              "sync.discover: true to poll every pair the account lists");
}

}  // namespace

// database.url: a postgresql:// URI, never with a password (nor its value in the error).
TEST_F(Config, DatabaseUrlIsAPostgresqlUriWithoutAPassword) {
    const auto cfg = load_ok("database:\n  url: postgresql://isync@db.internal:5432/incidents?sslmode=verify-full\n" +
                             std::string(one_pair));
    EXPECT_EQ(cfg.database.url, "postgresql://isync@db.internal:5432/incidents?sslmode=verify-full");
    EXPECT_TRUE(isync::config::uses_postgresql(cfg.database));
    EXPECT_FALSE(isync::config::uses_postgresql(load_ok(std::string(one_pair)).database));

    for (const std::string url :
         {"postgresql://isync:pw-canary@db/incidents", "postgres://db/incidents?sslmode=require&password=pw-canary",
          "postgresql://db/incidents?password=pw-canary"}) {
        const auto message = error_for("database:\n  url: " + url + "\n" + std::string(one_pair));
        EXPECT_NE(message.find("database.url: holds a password"), std::string::npos) << message;
        EXPECT_NE(message.find("database.password_file"), std::string::npos) << message;
        EXPECT_EQ(message.find("pw-canary"), std::string::npos) << message;
    }
    EXPECT_NE(error_for("database:\n  url: mysql://db/x\n" + std::string(one_pair)).find("is not a postgresql:// URL"),
              std::string::npos);
    // A user name with no password, and an '@' in the path, are fine.
    EXPECT_EQ(load_ok("database:\n  url: postgresql://isync@db/inc@dents\n" + std::string(one_pair)).database.url,
              "postgresql://isync@db/inc@dents");
}
