#pragma once
// The fake Code Defender API: an HTTPS server on 127.0.0.1 that serves a
// dataset as `GET /v1/incidents`, injects faults on request, refuses chosen
// appIds, and behaves like a real link when asked (latency, a limit on
// requests in flight, gzip/deflate bodies). It runs its own
// io_context on one background thread, so a test can drive a blocking client
// on its own thread; every public member function is thread-safe.

#include "fake_api/account.hpp"
#include "fake_api/dataset.hpp"
#include "fake_api/endpoint.hpp"
#include "fake_api/faults.hpp"
#include "fake_api/link.hpp"
#include "fake_api/pki.hpp"
#include "model/incident.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fake_api {

// Which certificate the server presents.
enum class server_certificate {
    valid,          // for 127.0.0.1 and localhost, signed by ca_pem()
    expired,        // ... expired yesterday
    not_yet_valid,  // ... valid from tomorrow
    wrong_host,     // signed by ca_pem(), but for wrong-host.example only
    self_signed,    // for 127.0.0.1 and localhost, signed by itself
    unknown_ca,     // for 127.0.0.1 and localhost, signed by a CA nobody trusts
};

enum class tls_version { tls1_0, tls1_1, tls1_2, tls1_3 };

struct tls_options {
    server_certificate certificate = server_certificate::valid;
    std::optional<credentials> custom{};  // presented instead of `certificate` when set
    tls_version min_version = tls_version::tls1_2;
    // tls1_1 or lower also drops OpenSSL's security level to 0, which OpenSSL 3
    // requires before it will speak TLS 1.0/1.1 at all.
    tls_version max_version = tls_version::tls1_3;
};

struct server_options {
    dataset_options data{};                  // generated at start-up unless `shared_data` is set
    std::shared_ptr<dataset> shared_data{};  // served instead (and mutated in live mode, under the server's lock)
    std::string token = "test-token";
    std::vector<std::string> other_tokens{};               // accepted too; requests for a pair are told apart by token
    std::map<std::string, app_refusal> refused_app_ids{};  // refused with their status, whatever the token
    std::vector<std::string> unauthorized_app_ids{};       // shorthand: refused_app_ids entries with 401
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;               // 0: ephemeral
    std::size_t take_cap = 1000;          // see endpoint_config::take_cap
    std::uint64_t max_result_window = 0;  // see endpoint_config::max_result_window
    std::string paging_base_url = endpoint_config{}.paging_base_url;
    tls_options tls{};
    fake_api::faults faults{};
    link_options link{};                   // latency, max in flight, compression
    std::optional<std::int64_t> now_ms{};  // the sim clock; unset: real time
    // GET /v1/account-settings: these applications; unset: applications_of(the dataset's pairs).
    std::optional<std::vector<application>> applications{};
    // When set, GET /v1/account-settings answers this file's bytes, read at
    // every request (so a person can edit it while the sim runs).
    std::filesystem::path account_file{};
};

struct server_stats {
    std::uint64_t requests = 0;  // complete HTTP requests read
    std::uint64_t connections_accepted = 0;
    std::uint64_t tls_handshake_failures = 0;
    std::map<unsigned, std::uint64_t> status_counts;  // by status code sent
    std::uint64_t resets = 0;                         // reset_every_kth
    std::uint64_t unanswered = 0;                     // never_answer
    std::uint64_t truncated = 0;                      // truncate_every_kth (also counted as 200)
    std::uint64_t malformed = 0;                      // malformed_every_kth (also counted as 200)
    std::uint64_t wrong_content_type = 0;             // wrong_content_type_every_kth (also counted as 200)
    std::uint64_t incidents_served = 0;               // in 200 pages, truncated and malformed ones included
    std::uint64_t account_settings_requests = 0;      // GET /v1/account-settings admitted
    std::uint64_t live_changed = 0;
    std::uint64_t live_added = 0;
    // Response bodies as written (after compression and truncation), and the
    // same bodies before either.
    std::uint64_t bytes_sent = 0;
    std::uint64_t body_bytes_uncompressed = 0;
    std::uint32_t in_flight = 0;         // requests admitted and not yet answered (their latency included)
    std::uint32_t peak_in_flight = 0;    // the most at once since the stats were reset
    std::uint64_t refused_429 = 0;       // 429s for link.max_in_flight (also in status_counts)
    std::uint64_t rate_limited_429 = 0;  // 429s for link.rate_limit (also in status_counts)
    // Incident requests for a pair (appId and tld) that arrived while a
    // request for the same pair with another token was in flight: two
    // clients polling one pair at once.
    std::uint64_t pair_overlaps = 0;
    std::deque<std::string> targets;       // the last 10,000 request targets, oldest first
    std::deque<std::string> server_names;  // SNI of the last 1,000 handshakes ("" when none was sent)
};

class server {
public:
    // Generates (or takes) the dataset, makes a CA and the certificate, binds
    // and listens: port() is valid on return. Throws on bind or TLS set-up failure.
    explicit server(server_options options = {});
    ~server();  // stop()
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    std::uint16_t port() const noexcept;
    std::string base_url() const;  // https://127.0.0.1:<port>
    const std::string& token() const noexcept;

    // The CA a client must trust (even when the server presents another certificate).
    const std::string& ca_pem() const noexcept;
    void write_ca_file(const std::filesystem::path& path) const;

    // Replaces the faults and restarts their every-Kth count.
    void set_faults(const faults& f);
    faults current_faults() const;

    // What GET /v1/account-settings lists from now on.
    void set_applications(const std::vector<application>& apps);

    void set_now_ms(std::optional<std::int64_t> now_ms);
    std::int64_t now_ms() const;  // the sim clock

    server_stats stats() const;
    void reset_stats();
    // Blocks until `done(stats)` holds (checked at every change) or `timeout`
    // passes; returns whether it held. The way tests wait without sleeping.
    bool wait_for(const std::function<bool(const server_stats&)>& done, std::chrono::milliseconds timeout) const;
    bool wait_for_requests(std::uint64_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

    // The dataset, read under the server's lock (live mode changes it).
    void with_dataset(const std::function<void(const dataset&)>& read) const;
    std::size_t incident_count() const;
    isync::model::incident expected_incident(std::size_t i) const;

    // Closes the listener and every connection, then joins the thread (the
    // loop is stopped outright if connections are still busy after 2 s).
    // Idempotent.
    void stop();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace fake_api
