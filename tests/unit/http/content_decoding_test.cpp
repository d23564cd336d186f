// Content-Encoding decoding, sans-io: bodies compressed here with zlib, then
// decoded, cut short, corrupted, or inflated past the limit.
#include "http/content_decoding.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using isync::errc;
using isync::http::content_coding;
using isync::http::content_decoder;
using isync::http::decode_content;
using isync::http::parse_content_encoding;
using isync::test::contains;

constexpr int gzip_bits = MAX_WBITS + 16;
constexpr int zlib_bits = MAX_WBITS;
constexpr int raw_bits = -MAX_WBITS;

// `input` repeated `repeat` times, compressed by zlib in the format `window_bits` selects.
std::string compress(const std::string& input, int window_bits, int repeat = 1) {
    z_stream z{};
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2");
    std::string out;
    std::vector<unsigned char> buffer(64 * 1024);
    for (int i = 0; i < repeat; ++i) {
        const int flush = i + 1 == repeat ? Z_FINISH : Z_NO_FLUSH;
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
        z.avail_in = static_cast<uInt>(input.size());
        do {
            z.next_out = buffer.data();
            z.avail_out = static_cast<uInt>(buffer.size());
            if (deflate(&z, flush) == Z_STREAM_ERROR) throw std::runtime_error("deflate");
            out.append(reinterpret_cast<const char*>(buffer.data()), buffer.size() - z.avail_out);
        } while (z.avail_out == 0);
    }
    deflateEnd(&z);
    return out;
}

// A realistic page: the API's list shape, a few hundred incidents.
std::string json_page() {
    std::string page = R"({"data":[)";
    for (int i = 0; i < 300; ++i) {
        if (i) page += ',';
        page += R"({"id":"inc-)" + std::to_string(100000 + i) +
                R"(","appId":"app-7","tld":"example.com","severity":"high","status":"open",)"
                R"("title":"Script injected from cdn)" +
                std::to_string(i % 17) + R"(.example.net","firstSeen":"2024-05-01T12:00:00Z","lastSeen":"2024-05-0)" +
                std::to_string(1 + i % 9) + R"(T08:30:00Z","count":)" + std::to_string(i * 7) + "}";
    }
    page += R"(],"next":"cursor-abc"})";
    return page;
}

void expect_transport(const isync::result<std::string>& r, std::string_view says, std::string_view context) {
    ASSERT_FALSE(r) << context << ": decoded to " << r->size() << " bytes";
    EXPECT_EQ(r.error().code, errc::transport) << context << ": " << r.error().message;
    EXPECT_TRUE(contains(r.error().message, says)) << context;
}

}  // namespace

TEST(ContentDecoding, GzipRoundTripOfAJsonPage) {
    const std::string page = json_page();
    const std::string gz = compress(page, gzip_bits);
    ASSERT_LT(gz.size(), page.size() / 4);  // really compressed: the test is not a pass-through
    auto r = decode_content("gzip", gz, 1 << 20);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, page);
}

TEST(ContentDecoding, DeflateInTheZlibFormat) {
    const std::string page = json_page();
    const std::string z = compress(page, zlib_bits);
    ASSERT_EQ(static_cast<unsigned char>(z[0]), 0x78);  // a zlib header
    auto r = decode_content("deflate", z, 1 << 20);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, page);
}

TEST(ContentDecoding, RawDeflateAsSomeServersSendItUnderDeflate) {
    const std::string page = json_page();
    const std::string raw = compress(page, raw_bits);
    auto r = decode_content("deflate", raw, 1 << 20);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, page);
}

TEST(ContentDecoding, GzipIsNotAcceptedAsDeflateNorTheOtherWayRound) {
    const std::string page = json_page();
    expect_transport(decode_content("deflate", compress(page, gzip_bits), 1 << 20), "corrupt", "gzip as deflate");
    expect_transport(decode_content("gzip", compress(page, zlib_bits), 1 << 20), "corrupt", "zlib as gzip");
    expect_transport(decode_content("gzip", compress(page, raw_bits), 1 << 20), "corrupt", "raw as gzip");
}

TEST(ContentDecoding, IdentityAndNoHeaderReturnTheBodyItselfUncopied) {
    for (const char* header : {"", "identity", " Identity "}) {
        std::string body = json_page();
        const std::string expected = body;
        const char* const storage = body.data();
        auto r = decode_content(header, std::move(body), 16);  // the parser bounded identity bodies already
        ASSERT_TRUE(r) << header << ": " << r.error().message;
        EXPECT_EQ(*r, expected) << header;
        EXPECT_EQ(r->data(), storage) << header << ": the body was copied, not moved";
    }
}

TEST(ContentDecoding, AnEmptyBodyIsEmptyWhateverItsCoding) {
    // A 204 or a redirect may carry Content-Encoding with no body at all.
    for (const char* header : {"gzip", "deflate", "br"}) {
        auto r = decode_content(header, "", 1 << 20);
        ASSERT_TRUE(r) << header << ": " << r.error().message;
        EXPECT_TRUE(r->empty());
    }
}

TEST(ContentDecoding, TruncatedGzipIsATransportErrorAtEveryCut) {
    const std::string gz = compress(json_page(), gzip_bits);
    // Inside the 10-byte header, inside the deflate data, inside the 8-byte
    // trailer (CRC32 and length), and one byte short.
    for (std::size_t cut : {std::size_t{1}, std::size_t{5}, std::size_t{10}, std::size_t{11}, gz.size() / 2,
                            gz.size() - 8, gz.size() - 4, gz.size() - 1}) {
        expect_transport(decode_content("gzip", gz.substr(0, cut), 1 << 20),
                         "the compressed response body is truncated",
                         "cut at " + std::to_string(cut) + " of " + std::to_string(gz.size()));
    }
}

TEST(ContentDecoding, TruncatedDeflateIsATransportErrorInBothFormats) {
    for (int bits : {zlib_bits, raw_bits}) {
        const std::string z = compress(json_page(), bits);
        for (std::size_t cut : {std::size_t{1}, std::size_t{2}, std::size_t{3}, z.size() / 2, z.size() - 1}) {
            expect_transport(decode_content("deflate", z.substr(0, cut), 1 << 20), "truncated",
                             "bits " + std::to_string(bits) + ", cut at " + std::to_string(cut));
        }
    }
}

TEST(ContentDecoding, ACorruptByteIsATransportErrorWithZlibsReason) {
    const std::string gz = compress(json_page(), gzip_bits);
    auto flipped = [&](std::size_t at) {
        std::string copy = gz;
        copy[at] = static_cast<char>(copy[at] ^ 0x55);
        return copy;
    };
    expect_transport(decode_content("gzip", flipped(0), 1 << 20), "is corrupt: incorrect header check", "magic byte");
    expect_transport(decode_content("gzip", flipped(gz.size() - 8), 1 << 20), "is corrupt: incorrect data check",
                     "CRC32");
    expect_transport(decode_content("gzip", flipped(gz.size() - 2), 1 << 20), "is corrupt: incorrect length check",
                     "length");
    // In the middle of the deflate data zlib's reason varies (a bad code, a bad
    // distance, or only the CRC at the end), but it is never a body.
    for (std::size_t at : {gz.size() / 3, gz.size() / 2}) {
        auto r = decode_content("gzip", flipped(at), 1 << 20);
        ASSERT_FALSE(r) << "byte " << at;
        EXPECT_EQ(r.error().code, errc::transport) << r.error().message;
    }
    const std::string z = compress(json_page(), zlib_bits);
    std::string bad_adler = z;
    bad_adler.back() = static_cast<char>(bad_adler.back() ^ 1);
    expect_transport(decode_content("deflate", bad_adler, 1 << 20), "is corrupt: incorrect data check", "Adler-32");
}

TEST(ContentDecoding, BytesAfterTheGzipMemberAreCorrupt) {
    const std::string gz = compress(json_page(), gzip_bits);
    expect_transport(decode_content("gzip", gz + "garbage", 1 << 20), "after the end of the compressed stream",
                     "garbage");
    expect_transport(decode_content("gzip", gz + std::string(1, '\0'), 1 << 20),
                     "after the end of the compressed stream", "one NUL");
    // Also when the extra bytes come in a later piece.
    content_decoder decoder(content_coding::gzip, 1 << 20);
    std::string out;
    ASSERT_TRUE(decoder.feed(gz, out));
    auto r = decoder.feed("x", out);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::transport);
    EXPECT_FALSE(decoder.finish());  // the error sticks
    expect_transport(decode_content("deflate", compress("{}", raw_bits) + "tail", 1 << 20),
                     "after the end of the compressed stream", "raw deflate");
}

TEST(ContentDecoding, AGzipBombStopsAtTheLimitWithoutAllocatingPastIt) {
    // 64 MiB of zeros: about 64 KiB of gzip.
    const std::string bomb = compress(std::string(1 << 20, '\0'), gzip_bits, 64);
    ASSERT_LT(bomb.size(), 128u * 1024);

    // A limit that is a whole number of 64 KiB steps, and one that is not
    // (where a doubling std::string would overshoot it).
    for (std::uint64_t limit : {std::uint64_t{1} << 20, (std::uint64_t{3} << 19) + 3}) {
        content_decoder decoder(content_coding::gzip, limit);
        std::string out;
        auto r = decoder.feed(bomb, out);
        ASSERT_FALSE(r) << limit;
        EXPECT_EQ(r.error().code, errc::too_large);
        EXPECT_EQ(r.error().message,
                  "the decompressed response body exceeds api.max_body (" + std::to_string(limit) + " bytes)");
        EXPECT_LE(out.capacity(), limit) << "the output grew past the limit before the check";
        EXPECT_LE(decoder.decoded_bytes(), limit);
    }

    auto whole = decode_content("gzip", bomb, 1 << 20);
    ASSERT_FALSE(whole);
    EXPECT_EQ(whole.error().code, errc::too_large);
    EXPECT_EQ(whole.error().message, "the decompressed response body exceeds api.max_body (1048576 bytes)");
}

TEST(ContentDecoding, ExactlyAtTheLimitPassesAndOneByteOverDoesNot) {
    const std::string page = json_page();
    for (int bits : {gzip_bits, zlib_bits}) {
        const char* header = bits == gzip_bits ? "gzip" : "deflate";
        const std::string compressed = compress(page, bits);
        auto at = decode_content(header, compressed, page.size());
        ASSERT_TRUE(at) << header << ": " << at.error().message;
        EXPECT_EQ(*at, page);
        auto over = decode_content(header, compressed, page.size() - 1);
        ASSERT_FALSE(over) << header;
        EXPECT_EQ(over.error().code, errc::too_large);
        EXPECT_TRUE(contains(over.error().message, "(" + std::to_string(page.size() - 1) + " bytes)"));
    }
    // The streaming decoder bounds identity bodies too.
    content_decoder identity(content_coding::identity, 4);
    std::string out;
    EXPECT_TRUE(identity.feed("abcd", out));
    auto r = identity.feed("e", out);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::too_large);
    EXPECT_EQ(out, "abcd");
}

TEST(ContentDecoding, OneByteAtATimeDecodesLikeAllAtOnce) {
    // Pieces as small as they come off a socket, including a deflate header
    // split across two pieces.
    const std::string page = json_page();
    for (auto [coding, bits] :
         {std::pair{content_coding::gzip, gzip_bits}, std::pair{content_coding::deflate, zlib_bits},
          std::pair{content_coding::deflate, raw_bits}}) {
        const std::string compressed = compress(page, bits);
        content_decoder decoder(coding, 1 << 20);
        std::string out;
        for (char c : compressed) ASSERT_TRUE(decoder.feed(std::string_view(&c, 1), out)) << "bits " << bits;
        ASSERT_TRUE(decoder.finish()) << "bits " << bits;
        EXPECT_EQ(out, page) << "bits " << bits;
        EXPECT_EQ(decoder.decoded_bytes(), page.size());
    }
}

TEST(ContentDecoding, AnUnsupportedCodingIsATransportErrorNamingIt) {
    const std::string body = "\x1f\x8b not really";
    for (auto [header, named] :
         {std::pair{"br", "\"br\""}, std::pair{"zstd", "\"zstd\""}, std::pair{"x-foo", "\"x-foo\""},
          std::pair{"compress", "\"compress\""}, std::pair{"gzip, br", "\"br\""}, std::pair{" BR , gzip", "\"BR\""}}) {
        auto r = decode_content(header, body, 1 << 20);
        expect_transport(r, named, header);
        if (!r) {
            EXPECT_TRUE(contains(r.error().message, "(it asks for gzip, deflate)")) << header;
        }
    }
}

TEST(ContentDecoding, TwoCodingsInAChainAreRefused) {
    const std::string twice = compress(compress(json_page(), gzip_bits), gzip_bits);
    expect_transport(decode_content("gzip, gzip", twice, 1 << 20), "chains content codings (\"gzip, gzip\")", "chain");
    expect_transport(decode_content("deflate,gzip", twice, 1 << 20), "chains", "chain without spaces");
}

TEST(ContentDecoding, TheHeaderIsCaseInsensitiveAndWhitespaceTolerant) {
    struct variant {
        const char* text;
        content_coding coding;
    };
    using enum content_coding;
    for (auto [text, coding] :
         {variant{"gzip", gzip}, variant{"GZIP", gzip}, variant{" Gzip ", gzip}, variant{"\tgzip\t", gzip},
          variant{"x-gzip", gzip}, variant{"gzip,", gzip}, variant{" , gzip", gzip}, variant{"identity, gzip", gzip},
          variant{"Deflate", deflate}, variant{" DEFLATE", deflate}, variant{"", identity}, variant{"   ", identity},
          variant{"IDENTITY", identity}, variant{",", identity}}) {
        auto r = parse_content_encoding(text);
        ASSERT_TRUE(r) << "\"" << text << "\": " << r.error().message;
        EXPECT_EQ(*r, coding) << "\"" << text << "\"";
    }
    // And the decoder follows the header: a mixed-case header still decodes.
    const std::string page = json_page();
    auto r = decode_content("  GZip  ", compress(page, gzip_bits), 1 << 20);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, page);
}
