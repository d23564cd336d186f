#include "store/row_batch.hpp"

#include "store/statements.hpp"

#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

using isync::store::row_batch;
using isync::store::statement_registry;
using isync::test::temp_dir;

namespace {

// What SQLite's quote() gives for a text value.
std::string sql_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        out += c;
        if (c == '\'') out += c;
    }
    return out + "'";
}

class RowBatch : public ::testing::Test {
protected:
    void SetUp() override { db_.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER, r REAL, s TEXT)"); }
    // Every row of t as text, in key order.
    std::vector<std::string> rows() {
        std::vector<std::string> out;
        SQLite::Statement st(db_, "SELECT k, quote(n), quote(r), quote(s) FROM t ORDER BY k");
        while (st.executeStep())
            out.push_back(st.getColumn(0).getString() + "|" + st.getColumn(1).getString() + "|" +
                          st.getColumn(2).getString() + "|" + st.getColumn(3).getString());
        return out;
    }

    temp_dir dir_;
    SQLite::Database db_{dir_.file("batch.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
    statement_registry statements_{db_};
};

}  // namespace

TEST_F(RowBatch, InsertsEveryRowWithEveryKindOfValueAcrossStatementSizes) {
    row_batch batch(statements_, "INSERT INTO t (k, n, r, s) VALUES", 4);
    std::deque<std::string> texts;  // stable addresses: bound without copies
    std::vector<std::string> want;
    // 37 rows: two full statements of 16 and one of 5.
    for (std::int64_t k = 0; k < 37; ++k) {
        const std::string& s = texts.emplace_back("text " + std::to_string(k) + (k % 5 == 0 ? " with 'quote'" : ""));
        if (k % 3 == 0) {
            batch.add({k, row_batch::value{}, row_batch::value{}, row_batch::value{}});
            want.push_back(std::to_string(k) + "|NULL|NULL|NULL");
        } else {
            batch.add({k, k * 10, 0.5 + static_cast<double>(k), &s});
            want.push_back(std::to_string(k) + "|" + std::to_string(k * 10) + "|" + std::to_string(k) + ".5|" +
                           sql_quote(s));
        }
    }
    EXPECT_FALSE(batch.empty());
    EXPECT_TRUE(rows().empty()) << "nothing is inserted before flush";
    batch.flush();
    EXPECT_TRUE(batch.empty());
    EXPECT_EQ(rows(), want);
    batch.flush();  // nothing left: inserts nothing more
    EXPECT_EQ(rows().size(), 37u);
}

TEST_F(RowBatch, RowsRunInTheOrderAddedSoOrReplaceKeepsTheLast) {
    row_batch batch(statements_, "INSERT OR REPLACE INTO t (k, n, r, s) VALUES", 4);
    const std::string first = "first", last = "last";
    for (int i = 0; i < 20; ++i) batch.add({std::int64_t{1}, std::int64_t{1}, row_batch::value{}, &first});
    batch.add({std::int64_t{1}, std::int64_t{1}, row_batch::value{}, &last});
    batch.flush();
    EXPECT_EQ(rows(), std::vector<std::string>{"1|1|NULL|'last'"});
}

TEST_F(RowBatch, AFailedFlushThrowsDropsItsRowsAndTheNextOneWorks) {
    row_batch batch(statements_, "INSERT INTO t (k, n, r, s) VALUES", 4);
    db_.exec("BEGIN");
    batch.add({std::int64_t{1}, std::int64_t{1}, row_batch::value{}, row_batch::value{}});
    batch.add({std::int64_t{1}, std::int64_t{1}, row_batch::value{}, row_batch::value{}});  // same primary key
    EXPECT_THROW(batch.flush(), SQLite::Exception);
    EXPECT_TRUE(batch.empty());
    db_.exec("ROLLBACK");
    statements_.reset_all();  // as the store does after a failure
    batch.clear();
    batch.add({std::int64_t{2}, std::int64_t{1}, row_batch::value{}, row_batch::value{}});
    batch.flush();
    EXPECT_EQ(rows(), std::vector<std::string>{"2|1|NULL|NULL"});
}

TEST_F(RowBatch, ARowOfTheWrongWidthIsAProgrammingError) {
    row_batch batch(statements_, "INSERT INTO t (k, n, r, s) VALUES", 4);
    EXPECT_THROW(batch.add({std::int64_t{1}, std::int64_t{2}}), std::logic_error);
    EXPECT_TRUE(batch.empty());
}
