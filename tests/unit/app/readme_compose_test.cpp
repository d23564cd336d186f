// README.md's compose example ("Sharing one database": PostgreSQL and two
// daemons) cannot run here (no Docker engine; docker_test.sh runs the same
// two daemons from the image with buildah). What can be checked is that the
// file says what the image and the daemon read: the configuration where the
// daemon looks for it, the secrets under the names it reads them by, the
// PostgreSQL service named, and with the user and database, as the README's
// database.url says, and the image tagged as the README builds it.
#include "app/arguments.hpp"
#include "config_file/token.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>
#include <string>

namespace {

std::string readme() { return isync::test::source_file("README.md"); }

// The README's text from `heading` up to the end of the first ```yaml block after it.
struct compose_example {
    std::string prose;  // between `heading` and the block
    std::string yaml;
};

compose_example find_example(const std::string& text, const std::string& heading) {
    const auto at = text.find(heading);
    if (at == std::string::npos) return {};
    const auto open = text.find("```yaml\n", at);
    const auto close = open == std::string::npos ? open : text.find("```", open + 8);
    if (close == std::string::npos) return {};
    return {text.substr(at, open - at), text.substr(open + 8, close - open - 8)};
}

std::set<std::string> strings_of(const YAML::Node& list) {
    std::set<std::string> out;
    for (const auto& item : list) out.insert(item.as<std::string>());
    return out;
}

TEST(ReadmeCompose, TheComposeExampleMountsWhatTheImageAndTheDaemonRead) {
    const std::string text = readme();
    const auto example = find_example(text, "A compose file with PostgreSQL and two daemons");
    ASSERT_FALSE(example.yaml.empty()) << "README.md: the compose example was not found";
    const YAML::Node compose = YAML::Load(example.yaml);
    const YAML::Node services = compose["services"];
    ASSERT_TRUE(services && services["db"] && services["sync-a"] && services["sync-b"]);

    // Both daemons: the image as the README builds it, the configuration
    // where the daemon reads it by default, both secrets.
    for (const char* name : {"sync-a", "sync-b"}) {
        SCOPED_TRACE(name);
        const YAML::Node sync = services[name];
        const std::string image = sync["image"].as<std::string>();
        EXPECT_NE(text.find("docker build -t " + image + " ."), std::string::npos)
            << "the README does not build the image the compose file runs: " << image;
        bool config_mounted = false;
        for (const auto& volume : sync["volumes"]) {
            const auto v = volume.as<std::string>();
            config_mounted =
                config_mounted || v.find(":" + isync::app::arguments{}.config_path + ":") != std::string::npos;
        }
        EXPECT_TRUE(config_mounted) << "no volume mounts the configuration at " << isync::app::arguments{}.config_path;
        const auto secrets = strings_of(sync["secrets"]);
        // Compose mounts a secret NAME at /run/secrets/NAME.
        for (const auto& path : {isync::config::default_docker_secret, isync::config::default_docker_database_secret}) {
            EXPECT_EQ(path.parent_path(), "/run/secrets");
            EXPECT_TRUE(secrets.contains(path.filename().string()))
                << "the daemon reads " << path << ", which the compose file does not mount";
        }
        EXPECT_TRUE(strings_of(sync["depends_on"]).contains("db"));
    }

    // Every secret a service uses is defined, from a file.
    for (const auto& service : services)
        for (const auto& secret : service.second["secrets"]) {
            const auto name = secret.as<std::string>();
            EXPECT_TRUE(compose["secrets"][name] && compose["secrets"][name]["file"]) << "secret " << name;
        }

    // PostgreSQL: its password from one of its secrets; the service, user and
    // database the README's database.url names.
    const YAML::Node db = services["db"];
    const auto password_file = db["environment"]["POSTGRES_PASSWORD_FILE"].as<std::string>();
    ASSERT_TRUE(password_file.starts_with("/run/secrets/"));
    EXPECT_TRUE(strings_of(db["secrets"]).contains(password_file.substr(std::string("/run/secrets/").size())));
    std::smatch url;
    ASSERT_TRUE(std::regex_search(example.prose, url,
                                  std::regex(R"(postgresql://([A-Za-z0-9_]+)@([A-Za-z0-9_-]+)/([A-Za-z0-9_]+))")))
        << "the README's text before the example names no database.url";
    EXPECT_EQ(url[1].str(), db["environment"]["POSTGRES_USER"].as<std::string>());
    EXPECT_TRUE(services[url[2].str()]) << "database.url's host " << url[2] << " is no service of the compose file";
    EXPECT_EQ(url[2].str(), "db");
    EXPECT_EQ(url[3].str(), db["environment"]["POSTGRES_DB"].as<std::string>());
}

}  // namespace
