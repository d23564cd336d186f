#pragma once
// The process's one TLS client context: TLS 1.2 minimum, peer verification
// against the system CA store plus an optional extra CA bundle.

#include "util/error.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace isync::http {

struct tls_options {
    std::string ca_file;                // extra CA bundle (PEM), may be empty
    bool insecure_skip_verify = false;  // tests only; the daemon warns at every start
};

// Fails with errc::config when `ca_file` cannot be read or holds no certificate.
result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const tls_options& options);

}  // namespace isync::http
