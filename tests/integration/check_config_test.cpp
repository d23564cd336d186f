// `check-config` refuses every configuration that `run` refuses at start-up,
// with the same exit code and the same words: a table of broken set-ups, each
// run through both commands as real processes.
#include "support/subprocess.hpp"
#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>

namespace {

namespace fs = std::filesystem;
using isync::test::temp_dir;

struct broken_setup {
    const char* name;
    int exit_code;      // what both commands must exit with
    const char* words;  // what both must say
    std::function<void(temp_dir&, std::string& yaml, std::vector<std::string>& env)> make;
};

void write(const std::string& path, const std::string& text, mode_t mode = 0600) {
    std::ofstream(path, std::ios::trunc) << text;
    ::chmod(path.c_str(), mode);
}

// A configuration `run` accepts: the broken setups each change one thing.
std::string good_yaml(const temp_dir& dir) {
    return fmt::format(
        "api:\n"
        "  base_url: https://127.0.0.1:9\n"
        "  token_file: {}\n"
        "retry:\n"
        "  max_attempts: 1\n"
        "sync:\n"
        "  pairs:\n"
        "    - {{ app_id: PXa, tld: a.example }}\n"
        "database:\n"
        "  path: {}\n"
        "metrics:\n"
        "  listen: 127.0.0.1:0\n",
        dir.file("token"), dir.file("incidents.db"));
}

std::string replace(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("fixture: no " + from);
    return text.replace(at, from.size(), to);
}

const std::vector<broken_setup>& setups() {
    static const std::vector<broken_setup> all{
        {"a listen host that is a name", 78, "does not name an IP address or localhost",
         [](temp_dir&, std::string& y, auto&) {
             y = replace(y, "listen: 127.0.0.1:0", "listen: metrics.example:9464");
         }},
        {"a database directory that does not exist", 74, "does not exist",
         [](temp_dir& d, std::string& y, auto&) {
             y = replace(y, d.file("incidents.db"), d.file("nowhere/incidents.db"));
         }},
        {"a database made by a newer version", 74, "newer version",
         [](temp_dir& d, std::string&, auto&) {
             SQLite::Database db(d.file("incidents.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
             db.exec("PRAGMA user_version=999");
         }},
        {"a database file that is not a database", 74, "not a database",
         [](temp_dir& d, std::string&, auto&) { write(d.file("incidents.db"), std::string(8192, 'x'), 0644); }},
        {"a database path that is a directory", 74, "not a regular file",
         [](temp_dir& d, std::string&, auto&) { fs::create_directory(d.file("incidents.db")); }},
        {"no token anywhere", 78, "no API token found",
         [](temp_dir& d, std::string&, auto&) { fs::remove(d.file("token")); }},
        {"a token file readable by others", 78, "chmod 600",
         [](temp_dir& d, std::string&, auto&) { ::chmod(d.file("token").c_str(), 0644); }},
        {"a CA file that does not exist", 78, "does not exist",
         [](temp_dir& d, std::string& y, auto&) {
             y = replace(y, "api:\n", "api:\n  ca_file: " + d.file("ca.pem") + "\n");
         }},
        {"a CA file that holds no certificate", 78, "cannot load CA bundle",
         [](temp_dir& d, std::string& y, auto&) {
             write(d.file("ca.pem"), "not a certificate\n", 0644);
             y = replace(y, "api:\n", "api:\n  ca_file: " + d.file("ca.pem") + "\n");
         }},
        {"an https_proxy that is not a CONNECT proxy", 78, "must use http://",
         [](temp_dir&, std::string&, std::vector<std::string>& env) {
             env.push_back("https_proxy=socks5://proxy:1080");
         }},
        {"a base URL without https", 78, "does not use https",
         [](temp_dir&, std::string& y, auto&) { y = replace(y, "https://127.0.0.1:9", "http://127.0.0.1:9"); }},
    };
    return all;
}

class StartupRefusal : public ::testing::TestWithParam<std::size_t> {};

TEST_P(StartupRefusal, CheckConfigRefusesWhatRunRefusesWithTheSameCodeAndWords) {
    const auto& setup = setups()[GetParam()];
    SCOPED_TRACE(setup.name);
    temp_dir dir;
    write(dir.file("token"), "a-token\n");
    std::string yaml = good_yaml(dir);
    std::vector<std::string> env;
    setup.make(dir, yaml, env);
    write(dir.file("incident-sync.yaml"), yaml, 0644);

    const auto command = [&](const char* verb) {
        return std::vector<std::string>{INCIDENT_SYNCD_PATH, verb, "--config", dir.file("incident-sync.yaml")};
    };
    const int check =
        test_support::run_process(command("check-config"), dir.path(), "check", std::chrono::seconds(20), env);
    const int run = test_support::run_process(command("run"), dir.path(), "run", std::chrono::seconds(20), env);
    const std::string check_out = test_support::read_file(dir.path() / "check.stderr");
    const std::string run_out = test_support::read_file(dir.path() / "run.stderr");
    EXPECT_EQ(check, setup.exit_code) << check_out;
    EXPECT_EQ(run, setup.exit_code) << run_out;
    EXPECT_TRUE(isync::test::contains(check_out, setup.words));
    EXPECT_TRUE(isync::test::contains(run_out, setup.words));
}

INSTANTIATE_TEST_SUITE_P(EveryBrokenSetup, StartupRefusal, ::testing::Range<std::size_t>(0, setups().size()),
                         [](const auto& info) {
                             std::string name = setups()[info.param].name;
                             for (auto& c : name)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return name;
                         });

// The good configuration itself: `check-config` says ok, so the table above
// tests refusals, not a fixture that never worked.
TEST(StartupRefusal, TheGoodConfigurationPassesCheckConfig) {
    temp_dir dir;
    write(dir.file("token"), "a-token\n");
    write(dir.file("incident-sync.yaml"), good_yaml(dir), 0644);
    const int check = test_support::run_process(
        {INCIDENT_SYNCD_PATH, "check-config", "--config", dir.file("incident-sync.yaml")}, dir.path(), "check");
    EXPECT_EQ(check, 0) << test_support::read_file(dir.path() / "check.stderr");
}

}  // namespace

// ------------------------------------------------------------------ check-config --online

#include "fake_api/pki.hpp"
#include "support/daemon_fixture.hpp"

namespace {

using test_support::daemon_fixture;
using test_support::daemon_options;

int online(daemon_fixture& f, const std::string& name) { return f.run("check-config", name, {"--online"}); }

}  // namespace

TEST(CheckConfigOnline, SaysPerPairWhatTheApiAnswered) {
    daemon_options o;
    o.incidents = 300;
    o.refused_app_ids = {{"PXsim001", fake_api::app_refusal::invalid}};
    daemon_fixture f(o);
    f.pairs().push_back({"PXsim000", "typo.example"});  // a pair the account does not have
    f.write_config();
    EXPECT_EQ(online(f, "online"), 1) << f.output("online");
    const std::string out = f.output("online");
    EXPECT_TRUE(isync::test::contains(out, "DNS, TCP and TLS ok"));
    EXPECT_TRUE(isync::test::contains(out, "PXsim000/site000.example: ok, "));
    EXPECT_TRUE(isync::test::contains(
        out, "PXsim001/site001.example: FAILED: HTTP 422: the API refused the request: Invalid appId PXsim001"));
    EXPECT_TRUE(isync::test::contains(out, "PXsim000/typo.example: ok, but no incidents at all in the last 3d"));
    EXPECT_EQ(f.server().stats().requests, 3u);  // one request per pair

    // Without the refused pair every pair answered: exit 0, the empty pair still warned about.
    f.pairs().erase(f.pairs().begin() + 1);
    f.write_config();
    EXPECT_EQ(online(f, "online-ok"), 0) << f.output("online-ok");
    EXPECT_TRUE(isync::test::contains(f.output("online-ok"), "no incidents at all"));
}

TEST(CheckConfigOnline, AWrongTokenIsNamedForEveryPairAndNeverShown) {
    daemon_fixture f;
    f.write_token("CANARY-wrong-token-4711");
    EXPECT_EQ(online(f, "online"), 1) << f.output("online");
    const std::string out = f.output("online");
    EXPECT_TRUE(isync::test::contains(out, "PXsim000/site000.example: FAILED: HTTP 401: the token was refused"));
    EXPECT_TRUE(isync::test::contains(out, "PXsim001/site001.example: FAILED: HTTP 401: the token was refused"));
    EXPECT_EQ(out.find("CANARY"), std::string::npos) << out;
}

TEST(CheckConfigOnline, AWrongCaSaysWhyTheCertificateWasRefused) {
    daemon_fixture f;
    const auto other = fake_api::make_ca("some other CA");
    fake_api::write_file(f.dir().file("ca.pem"), other.cert_pem);
    EXPECT_EQ(online(f, "online"), 1) << f.output("online");
    const std::string out = f.output("online");
    EXPECT_TRUE(isync::test::contains(out, "TLS refused: the server's certificate was issued by an unknown CA"));
    EXPECT_TRUE(isync::test::contains(out, "PXsim000/site000.example: FAILED: "));
}
