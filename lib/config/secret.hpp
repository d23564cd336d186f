#pragma once
// A credential that must never reach a log, a message or a test report.

#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace isync::config {

// Holds the API token (and a proxy's password). It has no operator<< and no fmt formatter on purpose:
// `spdlog::info("{}", token)` does not compile. Call reveal() only where the
// value is sent (the Authorization header).
class secret {
public:
    secret() = default;
    explicit secret(std::string value) noexcept : value_(std::move(value)) {}

    const std::string& reveal() const noexcept { return value_; }
    bool empty() const noexcept { return value_.empty(); }
    bool operator==(const secret&) const = default;

    // What a debugger-style dump may show instead of the value.
    static constexpr std::string_view debug_string() noexcept { return "***"; }

    // GoogleTest prints values through PrintTo: a failed assertion shows ***.
    friend void PrintTo(const secret&, std::ostream* os) { *os << debug_string(); }

private:
    std::string value_;
};

}  // namespace isync::config
