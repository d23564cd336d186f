#pragma once
// A gtest fixture base for the SQLite store's tests: a database file in a
// temporary directory of its own, opened (and migrated) by open_store() with
// an incident_store on it. Fixtures add their own helpers on top.

#include "store/database.hpp"
#include "store/incident_store.hpp"

#include "support/test_support.hpp"

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace isync::test {

class sqlite_store_test : public ::testing::Test {
protected:
    // Opens the file, closing the store and connection of an earlier call
    // first (a reopen, as after a daemon restart).
    void open_store() {
        store_.reset();
        db_.reset();
        auto opened = store::open_database({.path = path_});
        ASSERT_TRUE(opened.has_value()) << opened.error().message;
        db_ = std::move(*opened);
        store_ = std::make_unique<store::incident_store>(*db_, path_);
    }

    temp_dir dir_;
    std::string path_ = dir_.file("incidents.db");
    std::unique_ptr<SQLite::Database> db_;
    std::unique_ptr<store::incident_store> store_;
};

}  // namespace isync::test
