#pragma once
// HTTP content codings (RFC 9110 §8.4) for response bodies, sans-io: which
// codings the client asks for, and a decoder that inflates gzip or deflate in
// bounded chunks. The decoded size is capped by the same limit as the body
// on the wire (api.max_body), checked before the output grows, so a small
// compressed body that inflates to gigabytes (a "zip bomb") costs at most
// about the limit in memory.

#include "util/error.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace isync::http {

// The Accept-Encoding request value: exactly the codings decoded here.
inline constexpr std::string_view accepted_encodings = "gzip, deflate";

enum class content_coding { identity, gzip, deflate };

// Parses a Content-Encoding value: case-insensitive, whitespace around and
// empty list elements ignored; "" and "identity" are identity, "x-gzip" is
// gzip. Errors: errc::transport naming a coding that is not supported, or
// quoting the value when it chains more than one coding.
result<content_coding> parse_content_encoding(std::string_view value);

// Decodes one response body fed in pieces. Not copyable or movable (zlib's
// stream state points at itself); construct it where it is used.
class content_decoder {
public:
    // `limit`: the most decoded bytes the body may have (api.max_body).
    // Throws std::bad_alloc when zlib cannot allocate its state.
    content_decoder(content_coding coding, std::uint64_t limit);
    ~content_decoder();
    content_decoder(const content_decoder&) = delete;
    content_decoder& operator=(const content_decoder&) = delete;

    // Decodes `input` and appends the result to `out`. `out` never grows past
    // its size plus the bytes still allowed by the limit, in size or capacity.
    // Errors: errc::too_large when the decoded body would exceed the limit;
    // errc::transport when the stream is corrupt or has bytes after its end.
    // After an error every later call returns the same error.
    result<void> feed(std::string_view input, std::string& out);

    // Call after the last byte. Errors: errc::transport when the compressed
    // stream stopped before its end (a body of zero bytes is complete: empty).
    result<void> finish();

    std::uint64_t decoded_bytes() const { return decoded_; }

private:
    struct zlib_state;

    result<void> inflate_some(std::string_view input, std::string& out);
    result<void> fail(error e);

    content_coding coding_;
    std::uint64_t limit_;
    std::uint64_t decoded_ = 0;
    std::uint64_t received_ = 0;
    std::string deflate_head_;  // the first bytes of a deflate body, until the format is known
    std::unique_ptr<zlib_state> zlib_;
    bool ended_ = false;  // the compressed stream reached its end marker
    std::optional<error> failure_;
};

// Decodes a whole body in 64 KiB steps. An identity body, or an empty body
// whatever its coding, is returned as is (moved, not copied).
// Errors: errc::too_large when the decoded body exceeds `limit` bytes;
// errc::transport when the coding is not supported or the body is truncated
// or corrupt.
result<std::string> decode_content(std::string_view content_encoding, std::string body, std::uint64_t limit);

}  // namespace isync::http
