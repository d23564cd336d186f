// Every query of README.md's "Querying the database" runs on PostgreSQL,
// with the README's own table of what to write instead of SQLite's date and
// JSON functions, against a database a backfill filled; each returns rows
// where the data has some.

#include "fake_api/dataset.hpp"
#include "pgstore/pg_store.hpp"
#include "postgresql/pg_test_server.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string readme() { return isync::test::source_file("README.md"); }

// The ```sql blocks of the section `heading`, split into statements.
std::vector<std::string> queries_of(const std::string& text, const std::string& heading) {
    const auto start = text.find("\n## " + heading + "\n");
    const auto end = text.find("\n## ", start + 1);
    const std::string section = text.substr(start, end - start);
    std::vector<std::string> out;
    std::size_t at = 0;
    while ((at = section.find("```sql\n", at)) != std::string::npos) {
        const auto close = section.find("\n```", at);
        std::string block = section.substr(at + 7, close - at - 7);
        at = close;
        std::string statement;
        std::istringstream lines(block);
        for (std::string line; std::getline(lines, line);) {
            if (line.starts_with("--") || line.starts_with(".")) continue;  // comments, sqlite3 dot-commands
            statement += line + "\n";
            if (line.ends_with(";")) {
                out.push_back(statement);
                statement.clear();
            }
        }
    }
    return out;
}

// The README's own table: the SQLite column's text -> the PostgreSQL column's.
std::vector<std::pair<std::string, std::string>> translations(const std::string& text) {
    std::vector<std::pair<std::string, std::string>> out;
    const std::regex row(R"(\| `([^`]*)` \| `([^`]*)` \|)");
    const auto start = text.find("| SQLite | PostgreSQL |");
    const auto end = text.find("\n\n", start);
    const std::string table = text.substr(start, end - start);
    for (std::sregex_iterator it(table.begin(), table.end(), row), last; it != last; ++it)
        out.emplace_back((*it)[1], (*it)[2]);
    return out;
}

TEST(ReadmeQueries, RunOnPostgresqlWithTheReadmesTranslations) {
    pg_test::fresh_database db;
    {
        auto store = isync::pgstore::pg_store::open({db.url(), std::nullopt, "t"});
        ASSERT_TRUE(store) << store.error().message;
        fake_api::dataset data({.seed = 3, .incidents = 300, .pairs = fake_api::sim_pairs(2)});
        std::vector<isync::model::incident> page;
        for (std::size_t i = 0; i < data.size(); ++i) page.push_back(data.expected_incident(i));
        isync::store::slice_report finish;
        finish.pair = data.pairs()[0];
        finish.from_ms = data.options().start_ms;
        finish.to_ms = data.options().end_ms;
        finish.started_ms = data.options().end_ms;
        ASSERT_TRUE((*store)->begin());
        ASSERT_TRUE((*store)->write_page(page, 1'674'400'000'000, &finish));
        ASSERT_TRUE((*store)->commit());
    }
    const std::string text = readme();
    const auto table = translations(text);
    ASSERT_GE(table.size(), 3u) << "README.md's SQLite/PostgreSQL table not found";
    const auto queries = queries_of(text, "Querying the database");
    ASSERT_GE(queries.size(), 8u);
    auto conn = db.connect();
    int with_rows = 0;
    for (std::string q : queries) {
        for (const auto& [sqlite, postgresql] : table)
            for (auto at = q.find(sqlite); at != std::string::npos; at = q.find(sqlite, at))
                q.replace(at, sqlite.size(), postgresql);
        try {
            with_rows += conn->exec(q).rows() > 0;
        } catch (const std::exception& e) {
            ADD_FAILURE() << "a README query fails on PostgreSQL:\n" << q << e.what();
        }
    }
    EXPECT_GE(with_rows, 4) << "the queries ran on an empty database";
}

}  // namespace
