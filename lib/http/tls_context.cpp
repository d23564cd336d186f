#include "http/tls_context.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>

namespace isync::http {

namespace ssl = boost::asio::ssl;

result<std::shared_ptr<ssl::context>> make_tls_context(const tls_options& options) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    ctx->set_default_verify_paths(ec);  // the system store; absent in minimal images, which is fine with ca_file
    if (!options.ca_file.empty()) {
        ctx->load_verify_file(options.ca_file, ec);
        if (ec)
            return make_error(errc::config, fmt::format("api.ca_file: cannot load CA bundle {}: {}; give a readable "
                                                        "PEM file with one or more certificates",
                                                        options.ca_file, ec.message()));
    }
    ctx->set_verify_mode(options.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);
    return ctx;
}

}  // namespace isync::http
