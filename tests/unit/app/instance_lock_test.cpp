// One daemon per database: the flock on `<database>.lock`. flock locks belong
// to an open file description, so a second acquire() in this same process
// conflicts exactly as a second process would.

#include "app/instance_lock.hpp"

#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

using isync::errc;
using isync::app::instance_lock;
using isync::test::contains;
using isync::test::temp_dir;

TEST(InstanceLock, SecondAcquireFailsNamingTheLockFileAndTheHoldersPid) {
    temp_dir dir;
    const std::string db = dir.file("incidents.db");
    auto first = instance_lock::acquire(db);
    ASSERT_TRUE(first) << first.error().message;

    const auto second = instance_lock::acquire(db);
    ASSERT_FALSE(second) << "two locks on one database at once";
    EXPECT_EQ(second.error().code, errc::database_busy);
    EXPECT_TRUE(contains(second.error().message, db + ".lock"));
    EXPECT_TRUE(contains(second.error().message, "pid " + std::to_string(::getpid()) + ")"));
}

TEST(InstanceLock, LockFileHoldsThePid) {
    temp_dir dir;
    const std::string db = dir.file("incidents.db");
    auto lock = instance_lock::acquire(db);
    ASSERT_TRUE(lock) << lock.error().message;
    std::ifstream in(db + ".lock");
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), std::to_string(::getpid()) + "\n");
}

TEST(InstanceLock, ReleasedWhenDestroyed) {
    temp_dir dir;
    const std::string db = dir.file("incidents.db");
    {
        auto first = instance_lock::acquire(db);
        ASSERT_TRUE(first) << first.error().message;
        ASSERT_FALSE(instance_lock::acquire(db));
    }
    auto again = instance_lock::acquire(db);
    EXPECT_TRUE(again) << again.error().message;
    EXPECT_FALSE(instance_lock::acquire(db)) << "the new holder locks it again";
}

TEST(InstanceLock, MovedLockStaysHeldUntilTheNewOwnerIsDestroyed) {
    temp_dir dir;
    const std::string db = dir.file("incidents.db");
    std::optional<instance_lock> owner;
    {
        auto first = instance_lock::acquire(db);
        ASSERT_TRUE(first) << first.error().message;
        owner.emplace(std::move(*first));
    }  // the moved-from lock is destroyed here
    EXPECT_FALSE(instance_lock::acquire(db)) << "destroying the moved-from lock released it";
    owner.reset();
    EXPECT_TRUE(instance_lock::acquire(db));
}

TEST(InstanceLock, DifferentDatabasesDoNotConflict) {
    temp_dir dir;
    auto a = instance_lock::acquire(dir.file("a.db"));
    auto b = instance_lock::acquire(dir.file("b.db"));
    EXPECT_TRUE(a) << a.error().message;
    EXPECT_TRUE(b) << b.error().message;
}

TEST(InstanceLock, MissingDirectoryIsADatabaseErrorNamingTheLockFile) {
    temp_dir dir;
    const std::string db = dir.file("no-such-dir/incidents.db");
    const auto r = instance_lock::acquire(db);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::database);
    EXPECT_TRUE(contains(r.error().message, db + ".lock"));
}
