// The database under pressure: a writer that will not let go, a reader that
// holds an old snapshot, a full disk. Each must end in a clear error or in
// success, never in partial data or a watermark ahead of its data.
#include "support/db_reader.hpp"
#include "support/sync_harness.hpp"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <gtest/gtest.h>

#include <filesystem>

using test_support::harness_options;
using test_support::sync_harness;

namespace {

harness_options small_dataset() {
    harness_options o;
    o.pairs = 2;
    o.server.data.seed = 21;
    o.server.data.incidents = 1'500;
    o.server.data.pairs = fake_api::sim_pairs(2);
    return o;
}

std::string last_error(SQLite::Database& db) {
    SQLite::Statement st(db, "SELECT COALESCE(MAX(error), '') FROM sync_runs WHERE status = 'failed'");
    st.executeStep();
    return st.getColumn(0).getString();
}

}  // namespace

TEST(DatabasePressure, AWriterHoldingTheLockPastBusyTimeoutFailsThePassCleanlyThenItCatchesUp) {
    auto options = small_dataset();
    options.busy_timeout = std::chrono::milliseconds(200);
    sync_harness h(options);
    SQLite::Database other(h.db_path(), SQLite::OPEN_READWRITE);
    {
        SQLite::Transaction held(other, SQLite::TransactionBehavior::IMMEDIATE);  // another process's writer
        EXPECT_FALSE(h.run_once());
        for (const auto& p : h.settings().sync.pairs)
            EXPECT_EQ(test_support::watermark(h.db(), p.app_id, p.tld), std::nullopt);
        EXPECT_TRUE(test_support::incident_ids(h.db()).empty()) << "nothing partial may be committed";
    }  // released (rolled back)
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
}

TEST(DatabasePressure, AReaderHoldingASnapshotNeverMakesAWriteFailAndTheWalShrinksAfterwards) {
    // The daemon bounds its log with journal_size_limit (store/database.cpp):
    // SQLite cuts the -wal file back to that size at the first commit after a
    // complete checkpoint. A log shorter than the limit is never cut (and with
    // SQLITE_FCNTL_PERSIST_WAL the file is never deleted either), so the
    // reader must hold its snapshot across enough writes to grow the log past
    // the limit. How much log an incident makes depends on how the writer
    // groups pages into transactions (bigger ones rewrite hot pages less):
    // 17,000 made 62-85 MB, so 30,000 (about 110-150 MB) clear it well.
    constexpr std::uintmax_t journal_size_limit = 64ull << 20;
    auto options = small_dataset();
    options.server.data.incidents = 30'000;
    sync_harness h(options);
    ASSERT_EQ(h.db().execAndGet("PRAGMA journal_size_limit").getInt64(), static_cast<std::int64_t>(journal_size_limit));

    SQLite::Database reader(h.db_path(), SQLite::OPEN_READONLY);
    SQLite::Transaction snapshot(reader);  // a long analyst query, holding its snapshot
    reader.execAndGet("SELECT COUNT(*) FROM incidents");
    ASSERT_TRUE(h.run_once());  // WAL mode: readers never block the writer
    EXPECT_TRUE(h.database_matches_dataset());
    // The reader still sees the database as it was when it began.
    EXPECT_EQ(reader.execAndGet("SELECT COUNT(*) FROM incidents").getInt(), 0);
    const auto wal = h.db_path() + "-wal";
    const auto grown = std::filesystem::file_size(wal);
    // Neither a checkpoint nor the next commit could reuse the log while the
    // reader held frames at its start, so it grew past the limit.
    ASSERT_GT(grown, journal_size_limit) << "the dataset is too small to show the log shrinking";

    snapshot.commit();  // the reader lets go
    // The daemon's idle checkpoint (passive): with no reader left, it copies
    // every frame back into the database, so the next commit restarts the log
    // from its start and truncates the file to journal_size_limit.
    h.store().checkpoint();
    // One small write of the daemon's own: a failed slice's sync_runs row.
    isync::store::slice_report failed_slice;
    failed_slice.pair = h.settings().sync.pairs.front();
    failed_slice.started_ms = h.now_ms();
    ASSERT_TRUE(h.store().record_failure(failed_slice, "a test's write after the reader let go", h.now_ms(), false));
    const auto after_write = std::filesystem::file_size(wal);
    EXPECT_LE(after_write, journal_size_limit) << "grown to " << grown << " bytes";
    EXPECT_LT(after_write, grown);

    // And it stays bounded: a whole pass later the log is still within the limit.
    ASSERT_TRUE(h.run_once());
    EXPECT_LE(std::filesystem::file_size(wal), journal_size_limit);
    EXPECT_EQ(h.db().execAndGet("PRAGMA integrity_check").getString(), "ok");
}

TEST(DatabasePressure, AFullDiskIsAClearErrorThatLosesNothingAndTheSyncResumesWhenSpaceReturns) {
    sync_harness h(small_dataset());
    // Leave room for a few pages only: SQLite's own "disk full" via max_page_count.
    const auto pages = h.db().execAndGet("PRAGMA page_count").getInt();
    h.db().exec("PRAGMA max_page_count = " + std::to_string(pages + 40));
    EXPECT_FALSE(h.run_once());
    const std::string error = last_error(h.db());
    EXPECT_NE(error.find("full"), std::string::npos) << error;
    EXPECT_EQ(h.db().execAndGet("PRAGMA integrity_check").getString(), "ok");
    // Whatever committed is whole: no watermark ahead of its data.
    for (const auto& p : h.settings().sync.pairs) {
        const auto wm = test_support::watermark(h.db(), p.app_id, p.tld);
        if (!wm) continue;
        h.server().with_dataset([&](const fake_api::dataset& data) {
            for (std::size_t i = 0; i < data.size(); ++i) {
                if (data.pairs()[data.pair_of(i)] == p && data.last_seen_ms(i) < *wm) {
                    ASSERT_TRUE(test_support::read_incident(h.db(), data.id(i))) << data.id(i);
                }
            }
        });
    }
    h.db().exec("PRAGMA max_page_count = 1073741823");  // space returns
    ASSERT_TRUE(h.run_once());
    EXPECT_TRUE(h.database_matches_dataset());
}
