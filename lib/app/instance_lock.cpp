#include "app/instance_lock.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace isync::app {

result<instance_lock> instance_lock::acquire(const std::string& database_path) {
    const std::string path = database_path + ".lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return make_error(errc::database, fmt::format("cannot open lock file {}: {}; check that the database "
                                                      "directory exists and is writable",
                                                      path, std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char holder[32] = {};
        const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
        ::close(fd);
        std::string pid = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : std::string("unknown");
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        return make_error(errc::database_busy,
                          fmt::format("another incident-syncd (pid {}) is already syncing into {} (it holds {}); "
                                      "stop it first, or point this one at another database.path",
                                      pid, database_path, path));
    }
    // Record our pid for the message above; the lock, not the content, is what counts.
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
    return instance_lock(fd);
}

instance_lock::~instance_lock() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace isync::app
