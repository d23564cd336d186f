// Base64 for a proxy's Basic credentials: RFC 4648's test vectors.
#include "util/base64.hpp"

#include <gtest/gtest.h>

TEST(Base64, EncodesTheRfc4648Vectors) {
    using isync::util::base64_encode;
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
    // RFC 7617's example, and bytes above 0x7f.
    EXPECT_EQ(base64_encode("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    EXPECT_EQ(base64_encode("\xff\xfe\x80"), "//6A");
}
