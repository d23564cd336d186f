#include "fake_api/server.hpp"

#include <boost/url/parse.hpp>

#include "fake_api/random.hpp"
#include "util/timestamp.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fstream>
#include <sstream>

#include <atomic>
#include <condition_variable>
#include <future>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

namespace fake_api {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t max_targets = 10'000;
constexpr std::size_t max_server_names = 1'000;
constexpr auto handshake_timeout = 30s;
constexpr auto idle_timeout = 120s;  // a keep-alive connection waiting for its next request
constexpr auto write_timeout = 60s;
constexpr auto stop_grace = 2s;
constexpr std::int64_t real_time = std::numeric_limits<std::int64_t>::min();

std::int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

int openssl_version(tls_version v) {
    switch (v) {
        case tls_version::tls1_0:
            return TLS1_VERSION;
        case tls_version::tls1_1:
            return TLS1_1_VERSION;
        case tls_version::tls1_2:
            return TLS1_2_VERSION;
        case tls_version::tls1_3:
            return TLS1_3_VERSION;
    }
    return 0;
}

credentials presented_credentials(const tls_options& tls, const credentials& ca) {
    if (tls.custom) return *tls.custom;
    const std::vector<std::string> names{"localhost"}, ips{"127.0.0.1"};
    switch (tls.certificate) {
        case server_certificate::valid:
            return make_leaf(ca, names, ips);
        case server_certificate::expired:
            return make_leaf(ca, names, ips, {.not_before = -48h, .not_after = -24h});
        case server_certificate::not_yet_valid:
            return make_leaf(ca, names, ips, {.not_before = 24h, .not_after = 48h});
        case server_certificate::wrong_host:
            return make_leaf(ca, {"wrong-host.example"}, {});
        case server_certificate::self_signed:
            return make_self_signed(names, ips);
        case server_certificate::unknown_ca:
            return make_leaf(make_ca("incident-sim untrusted CA"), names, ips);
    }
    return make_leaf(ca, names, ips);
}

void configure_tls(ssl::context& ctx, const tls_options& tls, const credentials& presented) {
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::single_dh_use);
    SSL_CTX* native = ctx.native_handle();
    const int max = openssl_version(tls.max_version);
    const int min = std::min(openssl_version(tls.min_version), max);
    if (max < TLS1_2_VERSION) {
        // OpenSSL 3 refuses TLS 1.0/1.1 above security level 0 (and Debian's
        // system config raises the floor): lower both, for this context only.
        SSL_CTX_set_security_level(native, 0);
        SSL_CTX_set_cipher_list(native, "DEFAULT:@SECLEVEL=0");
    }
    if (!SSL_CTX_set_min_proto_version(native, min) || !SSL_CTX_set_max_proto_version(native, max))
        throw std::runtime_error("incident-sim: OpenSSL refused the TLS version range");
    ctx.use_certificate_chain(net::buffer(presented.cert_pem));
    ctx.use_private_key(net::buffer(presented.key_pem), ssl::context::pem);
}

// What to send for one request, decided under the lock, sent outside it.
struct answer {
    bool admitted = true;  // false: refused for max_in_flight, holds no slot
    fault_action action = fault_action::none;
    std::chrono::milliseconds delay{0};
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::string retry_after;
    std::optional<rate_window_counter::decision> rate;  // stated as X-RateLimit-* when the link has a rate limit
    std::string pair_key;  // "appId tld" of an admitted incident request, with its token: in flight until answered
    std::string client;
};

struct connection {
    connection(tcp::socket socket, ssl::context& tls) : stream(std::move(socket), tls), timer(stream.get_executor()) {}

    // Ends whatever the session awaits; runs on the loop's thread only.
    void close() {
        timer.cancel();
        beast::get_lowest_layer(stream).close();
    }

    ssl::stream<beast::tcp_stream> stream;
    net::steady_timer timer;
};

endpoint_config make_endpoint(const server_options& o, const dataset& data) {
    endpoint_config config{.token = o.token,
                           .other_tokens = o.other_tokens,
                           .take_cap = o.take_cap,
                           .paging_base_url = o.paging_base_url,
                           .refused_app_ids = o.refused_app_ids,
                           .max_result_window = o.max_result_window};
    // The older list means 401; an explicit refusal of the same appId wins.
    for (const auto& app : o.unauthorized_app_ids) config.refused_app_ids.emplace(app, app_refusal::unauthorized);
    config.account_settings = render_account_settings(o.applications ? *o.applications : applications_of(data.pairs()));
    return config;
}

}  // namespace

struct server::impl {
    explicit impl(server_options opts)
        : options(std::move(opts)),
          data(options.shared_data ? options.shared_data : std::make_shared<dataset>(options.data)),
          endpoint(make_endpoint(options, *data)),
          active_faults(options.faults),
          gate(options.link.max_in_flight),
          rate(options.link.rate_limit, options.link.rate_window),
          jitter(hash_of(options.data.seed, 0x6c696e6b /* "link" */)),
          fixed_now(options.now_ms.value_or(real_time)),
          ca(make_ca("incident-sim test CA")) {
        configure_tls(tls, options.tls, presented_credentials(options.tls, ca));
        const tcp::endpoint where(net::ip::make_address(options.address), options.port);
        acceptor.open(where.protocol());
        acceptor.set_option(net::socket_base::reuse_address(true));
        acceptor.bind(where);
        acceptor.listen();
        port = acceptor.local_endpoint().port();
    }

    std::int64_t now_ms() const {
        const auto fixed = fixed_now.load();
        return fixed == real_time ? wall_clock_ms() : fixed;
    }

    void start() {
        net::co_spawn(ioc, accept_loop(), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("incident-sim: accept loop ended: {}", ex.what());
            }
        });
        thread = std::thread([this] {
            try {
                ioc.run();
            } catch (const std::exception& e) {
                spdlog::error("incident-sim: event loop failed: {}", e.what());
            }
            loop_done.set_value();
        });
    }

    void stop() {
        const std::lock_guard guard(stop_mutex);
        if (!thread.joinable()) return;
        net::post(ioc, [this] {
            boost::system::error_code ignored;
            acceptor.close(ignored);
            for (auto* c : connections) c->close();
        });
        // Closing every socket lets each session finish on its own; a session
        // stuck elsewhere must not hang a test, so the loop is stopped after a grace period.
        if (loop_done.get_future().wait_for(stop_grace) != std::future_status::ready) ioc.stop();
        thread.join();
    }

    net::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec) {
                if (!acceptor.is_open()) co_return;
                continue;  // e.g. EMFILE: keep serving the connections we have
            }
            boost::system::error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            update([](server_stats& s) { ++s.connections_accepted; });
            auto c = std::make_shared<connection>(std::move(socket), tls);
            connections.insert(c.get());
            net::co_spawn(ioc, session(c), [this, c](std::exception_ptr e) {
                connections.erase(c.get());
                if (!e) return;
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::warn("incident-sim: connection ended by an exception: {}", ex.what());
                }
            });
        }
    }

    net::awaitable<void> session(std::shared_ptr<connection> c) {
        auto& stream = c->stream;
        auto& tcp_layer = beast::get_lowest_layer(stream);
        tcp_layer.expires_after(handshake_timeout);
        auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
        const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
        update([&](server_stats& s) {
            if (handshake_ec) ++s.tls_handshake_failures;
            s.server_names.emplace_back(sni ? sni : "");
            if (s.server_names.size() > max_server_names) s.server_names.pop_front();
        });
        if (handshake_ec) co_return;

        beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(16 * 1024);
            parser.body_limit(64 * 1024);
            tcp_layer.expires_after(idle_timeout);
            auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, use_tuple);
            if (read_ec) co_return;  // closed by the peer, idle, or stop(): nobody to answer
            const auto& req = parser.get();
            const auto target = req.target();
            const auto method = req.method_string();
            const auto authorization = req[http::field::authorization];
            answer a = decide({method.data(), method.size()}, {target.data(), target.size()},
                              {authorization.data(), authorization.size()});
            // Held until this answer is written (or the session ends): a
            // request waiting out its latency counts as in flight.
            const in_flight_slot slot(a.admitted ? this : nullptr, a.pair_key, a.client);

            if (a.delay > 0ms) {
                c->timer.expires_after(a.delay);
                auto [timer_ec] = co_await c->timer.async_wait(use_tuple);
                if (timer_ec) co_return;
            }
            if (a.action == fault_action::never_answer) {
                // Keep reading (and ignoring) until the peer gives up or stop() closes us.
                tcp_layer.expires_never();
                char sink[4096];
                for (;;) {
                    auto [ec, n] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
                    if (ec) co_return;
                }
            }
            if (a.action == fault_action::reset) {
                // SO_LINGER 0 turns close() into a TCP RST, as a crashed proxy would send.
                boost::system::error_code ignored;
                tcp_layer.socket().set_option(net::socket_base::linger(true, 0), ignored);
                tcp_layer.close();
                co_return;
            }

            const auto accept_encoding = req[http::field::accept_encoding];
            const auto coding = options.link.compression
                                    ? choose_coding({accept_encoding.data(), accept_encoding.size()})
                                    : content_coding::identity;
            const auto uncompressed_size = a.body.size();
            if (coding != content_coding::identity) a.body = encode_body(a.body, coding);

            http::response<http::string_body> res{static_cast<http::status>(a.status), req.version()};
            res.set(http::field::server, "incident-sim");
            res.set(http::field::date, isync::util::format_http_date(wall_clock_ms()));
            res.set(http::field::content_type, a.content_type);
            if (coding != content_coding::identity) {
                const auto name = coding_name(coding);
                res.set(http::field::content_encoding, {name.data(), name.size()});
                res.set(http::field::vary, "Accept-Encoding");
            }
            if (!a.retry_after.empty()) res.set(http::field::retry_after, a.retry_after);
            if (a.rate) {
                // Reset as epoch seconds, rounded up: a client waiting until
                // then finds the new window open.
                const auto reset_ms = wall_clock_ms() + a.rate->until_reset.count() + 999;
                res.set("X-RateLimit-Limit", std::to_string(options.link.rate_limit));
                res.set("X-RateLimit-Remaining", std::to_string(a.rate->remaining));
                res.set("X-RateLimit-Reset", std::to_string(reset_ms / 1000));
            }
            res.keep_alive(req.keep_alive());
            // Truncation cuts the encoded body, as a dropped link would: the
            // client sees the whole Content-Length announced and half of it.
            const auto declared_length = a.body.size();
            if (a.action == fault_action::truncate) a.body.resize(a.body.size() / 2);
            res.body() = std::move(a.body);
            res.prepare_payload();
            // Set after prepare_payload, which would otherwise correct it.
            if (a.action == fault_action::truncate) res.content_length(declared_length);
            // Counted before the write, like status_counts, so a client that
            // has its answer reads stats that include it.
            update([&](server_stats& st) {
                st.bytes_sent += res.body().size();
                st.body_bytes_uncompressed += uncompressed_size;
            });

            tcp_layer.expires_after(write_timeout);
            auto [write_ec, written] = co_await http::async_write(stream, res, use_tuple);
            if (write_ec) co_return;
            if (a.action == fault_action::truncate) {
                // No close_notify: the client sees the stream end mid-body.
                boost::system::error_code ignored;
                tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ignored);
                tcp_layer.close();
                co_return;
            }
            if (!res.keep_alive()) break;
        }
        tcp_layer.expires_after(5s);
        co_await stream.async_shutdown(use_tuple);
        tcp_layer.close();
    }

    // Releases an admitted request's place in the gate when its session is
    // done with it (also when the loop is destroyed with the session pending:
    // it touches only members declared before the io_context).
    class in_flight_slot {
    public:
        in_flight_slot(impl* owner, std::string pair_key, std::string client)
            : owner_(owner), pair_key_(std::move(pair_key)), client_(std::move(client)) {}
        in_flight_slot(const in_flight_slot&) = delete;
        in_flight_slot& operator=(const in_flight_slot&) = delete;
        ~in_flight_slot() {
            if (!owner_) return;
            owner_->update([this](server_stats& s) {
                owner_->gate.leave();
                s.in_flight = owner_->gate.current();
                if (!pair_key_.empty()) --owner_->pair_clients[pair_key_][client_];
            });
        }

    private:
        impl* owner_;
        std::string pair_key_;
        std::string client_;
    };

    // One request: counts it, admits it or refuses it for max_in_flight,
    // and builds the reply.
    answer decide(std::string_view method, std::string_view target, std::string_view authorization) {
        const auto now = now_ms();
        answer a;
        {
            const std::lock_guard lock(mutex);
            ++stats.requests;
            stats.targets.emplace_back(target);
            if (stats.targets.size() > max_targets) stats.targets.pop_front();

            if (rate.enabled()) a.rate = rate.take(std::chrono::steady_clock::now());
            if (a.rate && !a.rate->allowed) {
                // Over the account's rate: refused at once, like the gate below.
                a.admitted = false;
                a.status = 429;
                a.body = message_body("Too Many Requests");
                a.retry_after = std::to_string((a.rate->until_reset.count() + 999) / 1000);
                ++stats.rate_limited_429;
            } else if (gate.try_enter()) {
                stats.in_flight = gate.current();
                stats.peak_in_flight = std::max(stats.peak_in_flight, stats.in_flight);
                serve(a, method, target, authorization, now);
                count_pair_client(a, target, authorization);
            } else {
                // Refused at the door, as an overloaded front end does: at
                // once, without reaching the API, so no fault count or live step.
                a.admitted = false;
                a.status = 429;
                a.body = message_body("Too Many Requests");
                a.retry_after = std::to_string(options.link.retry_after_seconds);
                ++stats.refused_429;
            }
            if (a.action != fault_action::never_answer && a.action != fault_action::reset)
                ++stats.status_counts[a.status];
        }
        changed.notify_all();
        return a;
    }

    // An incident request in flight for its pair, by token; counts an
    // overlap when another token has one in flight for the same pair.
    void count_pair_client(answer& a, std::string_view target, std::string_view authorization) {
        if (!target.starts_with("/v1/incidents?")) return;
        const auto url = boost::urls::parse_origin_form(target);
        if (!url) return;
        std::string key;
        for (const auto& param : url->params())
            if (param.key == "appId" || param.key == "tld") key += param.key + "=" + param.value + " ";
        auto& clients = pair_clients[key];
        for (const auto& [client, n] : clients)
            if (n > 0 && client != authorization) ++stats.pair_overlaps;
        ++clients[std::string(authorization)];
        a.pair_key = std::move(key);
        a.client = authorization;
    }

    // An admitted request: applies live changes and faults, and builds the
    // reply. Caller holds the lock.
    void serve(answer& a, std::string_view method, std::string_view target, std::string_view authorization,
               std::int64_t now) {
        a.action = next_fault(active_faults, ++fault_seq);
        a.delay = active_faults.delay + link_delay(options.link, jitter.next());
        if (active_faults.live_changes_per_request > 0) {
            const auto step = data->step_live(active_faults.live_changes_per_request, now);
            stats.live_changed += step.changed.size();
            stats.live_added += step.added.size();
        }
        switch (a.action) {
            case fault_action::never_answer:
                ++stats.unanswered;
                break;
            case fault_action::reset:
                ++stats.resets;
                break;
            case fault_action::fail:
                a.status = 500;
                a.body = message_body("Internal Server Error");
                break;
            case fault_action::rate_limit:
                a.status = 429;
                a.body = message_body("Too Many Requests");
                a.retry_after = retry_after(active_faults);
                break;
            default:
                respond(a, method, target, authorization, now);
                break;
        }
    }

    // The endpoint's reply, altered by a truncate/malformed/wrong-content-type
    // fault when it is a 200 (a fault due on an error reply is skipped). Caller holds the lock.
    void respond(answer& a, std::string_view method, std::string_view target, std::string_view authorization,
                 std::int64_t now) {
        if (target.substr(0, target.find('?')) == "/v1/account-settings") {
            ++stats.account_settings_requests;
            if (active_faults.account_settings_status != 0) {
                a.status = active_faults.account_settings_status;
                a.body = message_body(a.status == 401 ? "Unauthorized" : "account settings unavailable");
                a.action = fault_action::none;
                return;
            }
            if (!options.account_file.empty()) {
                std::ifstream in(options.account_file, std::ios::binary);
                std::ostringstream text;
                text << in.rdbuf();
                endpoint.account_settings = in ? text.str() : std::string();
                if (!in) {
                    a.status = 500;
                    a.body = message_body("the sim could not read " + options.account_file.string());
                    a.action = fault_action::none;
                    return;
                }
            }
        }
        auto r = handle_request(method, target, authorization, *data, endpoint, now);
        a.status = r.status;
        a.body = std::move(r.body);
        if (r.status != 200) {
            a.action = fault_action::none;
            return;
        }
        stats.incidents_served += r.incidents;
        switch (a.action) {
            case fault_action::truncate:
                ++stats.truncated;
                break;  // cut in the session, after encoding
            case fault_action::malformed:
                ++stats.malformed;
                a.body.resize(a.body.size() / 2);  // an unclosed object: never valid JSON
                break;
            case fault_action::wrong_content_type:
                ++stats.wrong_content_type;
                a.content_type = "text/html; charset=utf-8";
                a.body =
                    "<html><head><title>Service notice</title></head><body><p>Please try again "
                    "later.</p></body></html>";
                break;
            default:
                break;
        }
    }

    static std::string retry_after(const faults& f) {
        if (!f.retry_after_http_date) return std::to_string(f.retry_after_seconds);
        // Rounded up: an IMF-fixdate has whole seconds, and rounding down
        // would ask for less than retry_after_seconds.
        const auto at = wall_clock_ms() + f.retry_after_seconds * 1000LL + 999;
        return isync::util::format_http_date(at - at % 1000);
    }

    template <class F>
    void update(F&& f) {
        {
            const std::lock_guard lock(mutex);
            f(stats);
        }
        changed.notify_all();
    }

    server_options options;
    std::shared_ptr<dataset> data;
    endpoint_config endpoint;

    mutable std::mutex mutex;  // guards data, active_faults, fault_seq, stats, gate, jitter
    mutable std::condition_variable changed;
    faults active_faults;
    std::uint64_t fault_seq = 0;
    server_stats stats;
    in_flight_gate gate;
    std::map<std::string, std::map<std::string, int>> pair_clients;  // pair -> token -> requests in flight
    rate_window_counter rate;
    rng jitter;
    std::atomic<std::int64_t> fixed_now;

    credentials ca;
    // The io_context outlives the sockets declared after it (members die in reverse order).
    net::io_context ioc{1};
    ssl::context tls{ssl::context::tls_server};
    tcp::acceptor acceptor{ioc};
    std::uint16_t port = 0;
    std::set<connection*> connections;  // open sessions; touched on the loop's thread only

    std::mutex stop_mutex;
    std::promise<void> loop_done;
    std::thread thread;
};

server::server(server_options options) : impl_(std::make_unique<impl>(std::move(options))) { impl_->start(); }

server::~server() { stop(); }

void server::stop() { impl_->stop(); }

std::uint16_t server::port() const noexcept { return impl_->port; }

std::string server::base_url() const { return "https://127.0.0.1:" + std::to_string(impl_->port); }

const std::string& server::token() const noexcept { return impl_->options.token; }

const std::string& server::ca_pem() const noexcept { return impl_->ca.cert_pem; }

void server::write_ca_file(const std::filesystem::path& path) const { write_file(path, impl_->ca.cert_pem); }

void server::set_faults(const faults& f) {
    const std::lock_guard lock(impl_->mutex);
    impl_->active_faults = f;
    impl_->fault_seq = 0;
}

faults server::current_faults() const {
    const std::lock_guard lock(impl_->mutex);
    return impl_->active_faults;
}

void server::set_applications(const std::vector<application>& apps) {
    const std::lock_guard lock(impl_->mutex);
    impl_->endpoint.account_settings = render_account_settings(apps);
}

void server::set_now_ms(std::optional<std::int64_t> now_ms) { impl_->fixed_now = now_ms.value_or(real_time); }

std::int64_t server::now_ms() const { return impl_->now_ms(); }

server_stats server::stats() const {
    const std::lock_guard lock(impl_->mutex);
    return impl_->stats;
}

void server::reset_stats() {
    impl_->update([this](server_stats& s) {
        s = {};
        // Requests still in flight stay counted, or their end would underflow.
        s.in_flight = s.peak_in_flight = impl_->gate.current();
    });
}

bool server::wait_for(const std::function<bool(const server_stats&)>& done, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(impl_->mutex);
    return impl_->changed.wait_for(lock, timeout, [&] { return done(impl_->stats); });
}

bool server::wait_for_requests(std::uint64_t n, std::chrono::milliseconds timeout) const {
    return wait_for([n](const server_stats& s) { return s.requests >= n; }, timeout);
}

void server::with_dataset(const std::function<void(const dataset&)>& read) const {
    const std::lock_guard lock(impl_->mutex);
    read(*impl_->data);
}

std::size_t server::incident_count() const {
    const std::lock_guard lock(impl_->mutex);
    return impl_->data->size();
}

isync::model::incident server::expected_incident(std::size_t i) const {
    const std::lock_guard lock(impl_->mutex);
    return impl_->data->expected_incident(i);
}

}  // namespace fake_api
