#include "http/content_decoding.hpp"

#include "util/text.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <limits>
#include <new>
#include <stdexcept>

namespace isync::http {

namespace {

// Input and output both move through zlib in steps of this size: the output
// limit is checked after every step, so an over-limit body is refused having
// produced at most one step beyond what was allowed, into a fixed buffer.
constexpr std::size_t chunk_size = 64 * 1024;

// Window bits for inflateInit2: zlib format, raw deflate, gzip only.
constexpr int zlib_window = MAX_WBITS;
constexpr int raw_window = -MAX_WBITS;
constexpr int gzip_window = MAX_WBITS + 16;

// Header text comes from the server and ends up in the log: keep it short.
std::string clipped(std::string_view s) { return util::printable(s, 64); }

// A zlib stream (RFC 1950 §2.2) starts with CMF/FLG: method 8, a window of at
// most 32 KiB, and the pair a multiple of 31. Raw deflate almost never does;
// when it does, inflate fails on the next bytes and the body counts as corrupt.
bool is_zlib_header(unsigned char cmf, unsigned char flg) {
    return (cmf & 0x0f) == Z_DEFLATED && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
}

// Appends, growing geometrically but never past `ceiling` bytes of capacity.
// std::string::reserve cannot promise that (libstdc++ rounds a request up to
// twice the old capacity), so the bigger buffer is a fresh string.
void append_bounded(std::string& out, std::string_view bytes, std::uint64_t ceiling) {
    const std::size_t needed = out.size() + bytes.size();
    if (needed > out.capacity()) {
        std::string grown;
        grown.reserve(static_cast<std::size_t>(
            std::min<std::uint64_t>(std::max<std::uint64_t>(needed, 2 * std::uint64_t{out.capacity()}), ceiling)));
        grown.append(out);
        out.swap(grown);
    }
    out.append(bytes);
}

// out.size() + room, without wrapping when the limit is "unlimited".
std::uint64_t ceiling_for(const std::string& out, std::uint64_t room) {
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    return room > max - out.size() ? max : out.size() + room;
}

error too_large(std::uint64_t limit) {
    return make_error(errc::too_large,
                      fmt::format("the decompressed response body exceeds api.max_body ({} bytes)", limit));
}

error truncated() { return make_error(errc::transport, "the compressed response body is truncated"); }

error corrupt(std::string_view why) {
    return make_error(errc::transport, fmt::format("the compressed response body is corrupt: {}", why));
}

}  // namespace

result<content_coding> parse_content_encoding(std::string_view value) {
    std::optional<content_coding> found;
    for (std::string_view rest = value;;) {
        const auto comma = rest.find(',');
        const auto item = util::trim(rest.substr(0, comma));
        // "identity" means no coding, and an empty list element is allowed (RFC 9110 §5.6.1).
        if (!item.empty() && !util::iequals(item, "identity")) {
            content_coding coding;
            if (util::iequals(item, "gzip") || util::iequals(item, "x-gzip"))  // x-gzip: RFC 9110 §8.4.1.3
                coding = content_coding::gzip;
            else if (util::iequals(item, "deflate"))
                coding = content_coding::deflate;
            else
                return make_error(errc::transport,
                                  fmt::format("the response uses Content-Encoding \"{}\", which this client does not "
                                              "decode (it asks for {})",
                                              clipped(item), accepted_encodings));
            // Two codings would mean decoding twice, each step a bomb of its
            // own; no server sends that to a client that asked for one.
            if (found)
                return make_error(errc::transport,
                                  fmt::format("the response chains content codings (\"{}\"); this client decodes one",
                                              clipped(util::trim(value))));
            found = coding;
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return found.value_or(content_coding::identity);
}

struct content_decoder::zlib_state {
    explicit zlib_state(int window_bits) {
        const int rc = inflateInit2(&stream, window_bits);
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        if (rc != Z_OK) throw std::runtime_error(fmt::format("zlib's inflateInit2 failed: {}", zError(rc)));
    }
    ~zlib_state() { inflateEnd(&stream); }
    zlib_state(const zlib_state&) = delete;
    zlib_state& operator=(const zlib_state&) = delete;

    z_stream stream{};
    std::array<unsigned char, chunk_size> scratch;
};

content_decoder::content_decoder(content_coding coding, std::uint64_t limit) : coding_(coding), limit_(limit) {
    if (coding_ == content_coding::gzip) zlib_ = std::make_unique<zlib_state>(gzip_window);
    // deflate: zlib is set up once the first two bytes say which format it is.
}

content_decoder::~content_decoder() = default;

result<void> content_decoder::fail(error e) {
    failure_ = e;
    return e;
}

result<void> content_decoder::feed(std::string_view input, std::string& out) {
    if (failure_) return *failure_;
    if (input.empty()) return {};
    received_ += input.size();
    if (coding_ == content_coding::identity) {
        if (input.size() > limit_ - decoded_) return fail(too_large(limit_));
        append_bounded(out, input, ceiling_for(out, limit_ - decoded_));
        decoded_ += input.size();
        return {};
    }
    if (!zlib_) {
        // "deflate" is the zlib format (RFC 9110 §8.4.1.2), but some servers
        // send raw deflate under that name. The first two bytes tell them
        // apart; deciding on them means no byte zlib has consumed is replayed.
        const auto take = std::min(2 - deflate_head_.size(), input.size());
        deflate_head_.append(input.substr(0, take));
        input.remove_prefix(take);
        if (deflate_head_.size() < 2) return {};
        const auto cmf = static_cast<unsigned char>(deflate_head_[0]);
        const auto flg = static_cast<unsigned char>(deflate_head_[1]);
        zlib_ = std::make_unique<zlib_state>(is_zlib_header(cmf, flg) ? zlib_window : raw_window);
        if (auto r = inflate_some(deflate_head_, out); !r) return r;
    }
    return inflate_some(input, out);
}

result<void> content_decoder::inflate_some(std::string_view input, std::string& out) {
    z_stream& z = zlib_->stream;
    unsigned char* const scratch = zlib_->scratch.data();
    while (!input.empty()) {
        // Anything after the end of the stream (a second gzip member, or
        // garbage) is refused: it would otherwise be silently dropped.
        if (ended_) return fail(corrupt("there are bytes after the end of the compressed stream"));
        const auto piece = input.substr(0, chunk_size);
        input.remove_prefix(piece.size());
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));  // zlib does not write input
        z.avail_in = static_cast<uInt>(piece.size());
        do {
            z.next_out = scratch;
            z.avail_out = static_cast<uInt>(chunk_size);
            const int rc = inflate(&z, Z_NO_FLUSH);
            switch (rc) {
                case Z_OK:
                case Z_BUF_ERROR:  // no progress possible: this piece is used up
                    break;
                case Z_STREAM_END:
                    ended_ = true;
                    break;
                case Z_NEED_DICT:
                    return fail(corrupt("it needs a preset dictionary"));
                case Z_MEM_ERROR:
                    throw std::bad_alloc();
                default:  // Z_DATA_ERROR: bad header, bad block, or a check value that does not match
                    return fail(corrupt(z.msg != nullptr ? z.msg : zError(rc)));
            }
            const std::size_t produced = chunk_size - z.avail_out;
            if (produced > limit_ - decoded_) return fail(too_large(limit_));
            const std::string_view decoded(reinterpret_cast<const char*>(scratch), produced);
            append_bounded(out, decoded, ceiling_for(out, limit_ - decoded_));
            decoded_ += produced;
            if (ended_ && z.avail_in > 0)
                return fail(corrupt("there are bytes after the end of the compressed stream"));
        } while (z.avail_out == 0 && !ended_);  // a full output buffer may leave output pending
    }
    return {};
}

result<void> content_decoder::finish() {
    if (failure_) return *failure_;
    if (coding_ == content_coding::identity || received_ == 0 || ended_) return {};
    return fail(truncated());
}

result<std::string> decode_content(std::string_view content_encoding, std::string body, std::uint64_t limit) {
    // Nothing to decode: a 204, a 304, or a redirect may carry the header
    // with no body, and that is not a truncated stream.
    if (body.empty()) return body;
    auto coding = parse_content_encoding(content_encoding);
    if (!coding) return coding.error();
    if (*coding == content_coding::identity) return body;
    content_decoder decoder(*coding, limit);
    std::string out;
    if (auto r = decoder.feed(body, out); !r) return r.error();
    if (auto r = decoder.finish(); !r) return r.error();
    return out;
}

}  // namespace isync::http
