#include "fake_api/pki.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace fake_api {
namespace {

template <class T, void (*free_fn)(T*)>
struct deleter {
    void operator()(T* p) const noexcept { free_fn(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BIGNUM, BN_free>>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION, X509_EXTENSION_free>>;

[[noreturn]] void fail(const char* what) {
    std::string message = std::string("test PKI: ") + what;
    while (const unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        message += "; ";
        message += buf;
    }
    throw std::runtime_error(message);
}

template <class T>
T* check(T* p, const char* what) {
    if (!p) fail(what);
    return p;
}

void check(int ok, const char* what) {
    if (ok <= 0) fail(what);
}

pkey_ptr make_key() { return pkey_ptr(check(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), "EC P-256 keygen")); }

std::string to_pem(const X509* cert, const EVP_PKEY* key) {
    bio_ptr bio(check(BIO_new(BIO_s_mem()), "BIO_new"));
    if (cert) check(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
    if (key)
        check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
              "PEM_write_bio_PrivateKey");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

x509_ptr read_cert(const std::string& pem) {
    bio_ptr bio(check(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), "BIO_new_mem_buf"));
    return x509_ptr(check(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), "read CA certificate"));
}

pkey_ptr read_key(const std::string& pem) {
    bio_ptr bio(check(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), "BIO_new_mem_buf"));
    return pkey_ptr(check(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), "read CA key"));
}

void add_extension(X509* cert, X509V3_CTX& ctx, int nid, const std::string& value) {
    ext_ptr ext(check(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()), "X509V3_EXT_conf_nid"));
    check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

std::string subject_alt_names(const std::vector<std::string>& dns_names, const std::vector<std::string>& ips) {
    std::string out;
    for (const auto& n : dns_names) out += (out.empty() ? "DNS:" : ",DNS:") + n;
    for (const auto& ip : ips) out += (out.empty() ? "IP:" : ",IP:") + ip;
    return out;
}

// A certificate for `key`, named `common_name`, signed by `issuer_key` as
// `issuer` (both null: self-signed).
x509_ptr make_cert(EVP_PKEY* key, std::string_view common_name, X509* issuer, EVP_PKEY* issuer_key, validity valid,
                   bool is_ca, const std::string& san) {
    x509_ptr cert(check(X509_new(), "X509_new"));
    check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");

    // Random serials: a client caches nothing across runs, but two certs from
    // one CA with equal serials would still be a protocol violation.
    unsigned char serial[16];
    check(RAND_bytes(serial, sizeof serial), "RAND_bytes");
    serial[0] &= 0x7f;  // positive
    bn_ptr bn(check(BN_bin2bn(serial, sizeof serial, nullptr), "BN_bin2bn"));
    check(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) != nullptr, "serial");

    check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(valid.not_before.count())) != nullptr,
          "notBefore");
    check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(valid.not_after.count())) != nullptr,
          "notAfter");

    X509_NAME* name = X509_get_subject_name(cert.get());
    check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>("incident-sync tests"), -1, -1, 0),
          "subject O");
    const std::string cn(common_name);
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                                     -1, 0),
          "subject CN");
    check(X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name), "issuer");
    check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    add_extension(cert.get(), ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_extension(cert.get(), ctx, NID_key_usage,
                  is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
    add_extension(cert.get(), ctx, NID_subject_key_identifier, "hash");
    // OpenSSL 3 (and strict verifiers) want the authority key id on everything but a root.
    if (issuer || !is_ca) add_extension(cert.get(), ctx, NID_authority_key_identifier, "keyid:always");
    if (!is_ca) add_extension(cert.get(), ctx, NID_ext_key_usage, "serverAuth");
    if (!san.empty()) add_extension(cert.get(), ctx, NID_subject_alt_name, san);

    check(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()), "X509_sign");
    return cert;
}

}  // namespace

credentials make_ca(std::string_view common_name, validity valid) {
    const auto key = make_key();
    const auto cert = make_cert(key.get(), common_name, nullptr, nullptr, valid, true, {});
    return {to_pem(cert.get(), nullptr), to_pem(nullptr, key.get())};
}

credentials make_leaf(const credentials& ca, const std::vector<std::string>& dns_names,
                      const std::vector<std::string>& ip_addresses, validity valid) {
    const auto ca_cert = read_cert(ca.cert_pem);
    const auto ca_key = read_key(ca.key_pem);
    const auto key = make_key();
    const std::string cn = !dns_names.empty()      ? dns_names.front()
                           : !ip_addresses.empty() ? ip_addresses.front()
                                                   : "leaf";
    const auto cert =
        make_cert(key.get(), cn, ca_cert.get(), ca_key.get(), valid, false, subject_alt_names(dns_names, ip_addresses));
    return {to_pem(cert.get(), nullptr), to_pem(nullptr, key.get())};
}

credentials make_self_signed(const std::vector<std::string>& dns_names, const std::vector<std::string>& ip_addresses,
                             validity valid) {
    const auto key = make_key();
    const std::string cn = !dns_names.empty()      ? dns_names.front()
                           : !ip_addresses.empty() ? ip_addresses.front()
                                                   : "self";
    const auto cert =
        make_cert(key.get(), cn, nullptr, nullptr, valid, false, subject_alt_names(dns_names, ip_addresses));
    return {to_pem(cert.get(), nullptr), to_pem(nullptr, key.get())};
}

void write_file(const std::filesystem::path& path, std::string_view contents, bool private_file) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, private_file ? 0600 : 0644);
    if (fd < 0) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < contents.size()) {
        const auto n = ::write(fd, contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(e));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
}

void write_pem_files(const credentials& creds, const std::filesystem::path& cert_path,
                     const std::filesystem::path& key_path) {
    write_file(cert_path, creds.cert_pem);
    write_file(key_path, creds.key_pem, true);
}

}  // namespace fake_api
