#include "fake_api/link.hpp"

#include <zlib.h>

#include <limits>
#include <stdexcept>

namespace fake_api {
namespace {

constexpr std::string_view whitespace = " \t";

std::string_view trimmed(std::string_view text) {
    const auto first = text.find_first_not_of(whitespace);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(whitespace) - first + 1);
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

// RFC 9110 qvalue: "0", "0.", "0.0", "0.00", "0.000" are the zero weights.
bool is_zero_weight(std::string_view q) {
    if (q.empty() || q.front() != '0') return false;
    if (q.size() == 1) return true;
    if (q[1] != '.') return false;
    return q.substr(2).find_first_not_of('0') == std::string_view::npos;
}

// What Accept-Encoding said about one coding: nothing, refused (q=0) or accepted.
enum class said { nothing, refused, accepted };

}  // namespace

std::chrono::milliseconds link_delay(const link_options& link, std::uint64_t random) noexcept {
    const auto jitter = static_cast<std::uint64_t>(link.latency_jitter.count() > 0 ? link.latency_jitter.count() : 0);
    const auto extra = random % (jitter + 1);  // jitter < 2^63: no overflow
    return link.latency + std::chrono::milliseconds(static_cast<std::int64_t>(extra));
}

content_coding choose_coding(std::string_view accept_encoding) noexcept {
    said gzip = said::nothing, deflate = said::nothing, any = said::nothing;
    while (!accept_encoding.empty()) {
        const auto comma = accept_encoding.find(',');
        const auto element = accept_encoding.substr(0, comma);
        accept_encoding = comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);

        const auto semicolon = element.find(';');
        const auto coding = trimmed(element.substr(0, semicolon));
        bool refused = false;
        for (auto params = semicolon == std::string_view::npos ? std::string_view() : element.substr(semicolon + 1);
             !params.empty();) {
            const auto next = params.find(';');
            const auto param = trimmed(params.substr(0, next));
            params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
            const auto equals = param.find('=');
            if (equals == std::string_view::npos || !equals_ignoring_case(trimmed(param.substr(0, equals)), "q"))
                continue;
            refused = is_zero_weight(trimmed(param.substr(equals + 1)));
        }
        const auto verdict = refused ? said::refused : said::accepted;
        if (equals_ignoring_case(coding, "gzip") || equals_ignoring_case(coding, "x-gzip"))
            gzip = verdict;
        else if (equals_ignoring_case(coding, "deflate"))
            deflate = verdict;
        else if (coding == "*")
            any = verdict;
    }
    const auto acceptable = [any](said s) {
        return s == said::accepted || (s == said::nothing && any == said::accepted);
    };
    if (acceptable(gzip)) return content_coding::gzip;
    if (acceptable(deflate)) return content_coding::deflate;
    return content_coding::identity;
}

std::string_view coding_name(content_coding coding) noexcept {
    switch (coding) {
        case content_coding::gzip:
            return "gzip";
        case content_coding::deflate:
            return "deflate";
        case content_coding::identity:
            break;
    }
    return "";
}

std::string encode_body(std::string_view body, content_coding coding) {
    if (coding == content_coding::identity) return std::string(body);
    // One deflate() call takes at most 4 GiB in and out; nothing served comes near.
    if (body.size() > std::numeric_limits<uInt>::max() / 2) throw std::runtime_error("encode_body: body over 2 GiB");
    // windowBits 15 is the zlib format; +16 asks zlib for a gzip wrapper instead.
    const int window_bits = coding == content_coding::gzip ? 15 + 16 : 15;
    // Level 1, as nginx's default gzip_comp_level: the simulator shares the
    // machine with the client it serves, so it spends little CPU on ratio.
    z_stream z{};
    if (deflateInit2(&z, 1, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("encode_body: deflateInit2 failed");
    std::string out(deflateBound(&z, static_cast<uLong>(body.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
    z.avail_in = static_cast<uInt>(body.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    // deflateBound() leaves room for the whole stream, so one Z_FINISH ends it.
    const int rc = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::runtime_error("encode_body: deflate did not finish");
    return out;
}

rate_window_counter::decision rate_window_counter::take(std::chrono::steady_clock::time_point now) noexcept {
    if (limit_ == 0) return {};
    if (!window_start_ || now >= *window_start_ + window_) {
        // Windows follow one another from the first request, as a gateway's do.
        const auto start = window_start_.value_or(now);
        const auto windows_passed = (now - start) / window_;
        window_start_ = start + windows_passed * window_;
        used_ = 0;
    }
    const auto until_reset = std::chrono::duration_cast<std::chrono::milliseconds>(*window_start_ + window_ - now);
    if (used_ >= limit_) return {false, 0, until_reset};
    ++used_;
    return {true, limit_ - used_, until_reset};
}

bool in_flight_gate::try_enter() noexcept {
    if (limit_ != 0 && current_ >= limit_) return false;
    ++current_;
    return true;
}

void in_flight_gate::leave() noexcept {
    if (current_ > 0) --current_;
}

}  // namespace fake_api
