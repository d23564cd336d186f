#include "store/statements.hpp"

#include "store/row_batch.hpp"

#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

using isync::store::row_batch;
using isync::store::statement_registry;
using isync::test::temp_dir;

namespace {

class StatementRegistry : public ::testing::Test {
protected:
    void SetUp() override {
        db_.exec("CREATE TABLE t (n INTEGER PRIMARY KEY)");
        db_.exec("INSERT INTO t (n) VALUES (1), (2), (3)");
    }

    // Statements of the connection that are mid-step: stepped, and neither
    // run to their end nor reset.
    int statements_mid_step() {
        int busy = 0;
        for (sqlite3_stmt* st = sqlite3_next_stmt(db_.getHandle(), nullptr); st != nullptr;
             st = sqlite3_next_stmt(db_.getHandle(), st))
            busy += sqlite3_stmt_busy(st) ? 1 : 0;
        return busy;
    }

    temp_dir dir_;
    SQLite::Database db_{dir_.file("statements.db"), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
    statement_registry statements_{db_};
};

}  // namespace

TEST_F(StatementRegistry, ResetAllRewindsAStatementLeftMidStep) {
    SQLite::Statement& st = statements_.make("SELECT n FROM t WHERE n >= ? ORDER BY n");
    st.bind(1, 1);
    ASSERT_TRUE(st.executeStep());
    ASSERT_TRUE(st.executeStep());
    ASSERT_EQ(st.getColumn(0).getInt(), 2);
    ASSERT_EQ(statements_mid_step(), 1);
    EXPECT_THROW(st.bind(1, 2), SQLite::Exception) << "SQLite refuses to bind a statement mid-step";

    statements_.reset_all();

    EXPECT_EQ(statements_mid_step(), 0);
    st.bind(1, 1);
    ASSERT_TRUE(st.executeStep());
    EXPECT_EQ(st.getColumn(0).getInt(), 1) << "steps from the first row again";
}

TEST_F(StatementRegistry, ResetAllReadiesAStatementThatRanToItsEnd) {
    SQLite::Statement& st = statements_.make("SELECT n FROM t WHERE n = 3");
    ASSERT_TRUE(st.executeStep());
    ASSERT_FALSE(st.executeStep());
    EXPECT_THROW(st.executeStep(), SQLite::Exception) << "SQLiteCpp refuses to step it again before a reset";

    statements_.reset_all();

    ASSERT_TRUE(st.executeStep());
    EXPECT_EQ(st.getColumn(0).getInt(), 3);
}

TEST_F(StatementRegistry, ResetAllReachesEveryStatementMadeThroughItAndNoOther) {
    std::vector<SQLite::Statement*> made;
    for (int i = 0; i < 40; ++i) {  // more than the store makes, so the deque grows past one block
        SQLite::Statement& st = statements_.make("SELECT n + " + std::to_string(i) + " FROM t ORDER BY n");
        made.push_back(&st);
        ASSERT_TRUE(st.executeStep());
    }
    SQLite::Statement elsewhere(db_, "SELECT n FROM t");
    ASSERT_TRUE(elsewhere.executeStep());
    ASSERT_EQ(statements_.size(), 40u);
    ASSERT_EQ(statements_mid_step(), 41);

    statements_.reset_all();

    EXPECT_EQ(statements_mid_step(), 1) << "only the statement made elsewhere is left mid-step";
    for (int i = 0; i < 40; ++i) {  // each reference still names its own statement
        ASSERT_TRUE(made[static_cast<std::size_t>(i)]->executeStep());
        EXPECT_EQ(made[static_cast<std::size_t>(i)]->getColumn(0).getInt(), 1 + i);
    }
}

TEST_F(StatementRegistry, ARowBatchMakesItsStatementsThroughTheRegistry) {
    row_batch batch(statements_, "INSERT INTO t (n) VALUES", 1);
    for (std::int64_t n = 10; n < 30; ++n) batch.add({n});
    batch.flush();  // 20 rows: one statement of 16 rows, one of 4
    EXPECT_EQ(statements_.size(), 2u);
    for (std::int64_t n = 30; n < 50; ++n) batch.add({n});
    batch.flush();  // the same two sizes: made once, reused
    EXPECT_EQ(statements_.size(), 2u);
    EXPECT_EQ(db_.execAndGet("SELECT COUNT(*) FROM t").getInt(), 43);
}

TEST_F(StatementRegistry, AStatementThatDoesNotPrepareThrowsAndIsNotKept) {
    EXPECT_THROW(statements_.make("SELECT missing FROM t"), SQLite::Exception);
    EXPECT_EQ(statements_.size(), 0u);
}
