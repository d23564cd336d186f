#pragma once
// One daemon per database: an exclusive flock on `<database>.lock`, held for
// the process's life. Readers (sqlite3, Datasette, `status`) never take it.

#include "util/error.hpp"

#include <string>

namespace isync::app {

class instance_lock {
public:
    // Fails with errc::database_busy when another process holds the lock
    // (the message names the lock file and, when known, the holder's pid).
    static result<instance_lock> acquire(const std::string& database_path);

    instance_lock(instance_lock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    instance_lock& operator=(instance_lock&&) = delete;
    ~instance_lock();

private:
    explicit instance_lock(int fd) : fd_(fd) {}
    int fd_;
};

}  // namespace isync::app
