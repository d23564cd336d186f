#pragma once
// A test PKI made at run time (EC P-256, SHA-256, OpenSSL 3 EVP APIs): no
// private key is ever committed. Certificates can be made already expired or
// not yet valid, for the hostile-TLS tests.
//
// Every function throws std::runtime_error, carrying OpenSSL's error queue,
// when OpenSSL refuses; a test fixture cannot recover from that anyway.

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace fake_api {

// A certificate and its private key, both PEM (the key is unencrypted PKCS#8).
struct credentials {
    std::string cert_pem;
    std::string key_pem;
};

// Validity relative to now: [now + not_before, now + not_after].
struct validity {
    std::chrono::seconds not_before{-std::chrono::hours(1)};
    std::chrono::seconds not_after{std::chrono::hours(24 * 30)};
};

// A CA certificate (basicConstraints CA:TRUE, keyCertSign) named `common_name`.
credentials make_ca(std::string_view common_name, validity valid = {});

// A server certificate signed by `ca`, with these subjectAltNames
// (`ip_addresses` as text, e.g. "127.0.0.1" or "::1").
credentials make_leaf(const credentials& ca, const std::vector<std::string>& dns_names,
                      const std::vector<std::string>& ip_addresses, validity valid = {});

// A server certificate that signs itself (and so chains to no CA a client trusts).
credentials make_self_signed(const std::vector<std::string>& dns_names, const std::vector<std::string>& ip_addresses,
                             validity valid = {});

// Writes `contents` to `path`, mode 0600 when `private_file` (a key), else 0644.
// Throws std::runtime_error naming the path.
void write_file(const std::filesystem::path& path, std::string_view contents, bool private_file = false);

// Writes the certificate and the key (mode 0600) to two files.
void write_pem_files(const credentials& creds, const std::filesystem::path& cert_path,
                     const std::filesystem::path& key_path);

}  // namespace fake_api
