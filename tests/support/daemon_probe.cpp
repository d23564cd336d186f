#include "support/daemon_probe.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <regex>
#include <stdexcept>
#include <thread>

namespace test_support {

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return done();
}

http_result http_get(std::uint16_t port, const std::string& target) {
    namespace http = boost::beast::http;
    boost::asio::io_context ioc;
    boost::beast::tcp_stream stream(ioc);
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(stream, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {res.result_int(), res.body()};
}

double sample(const std::string& metrics, const std::string& series) {
    const auto at = metrics.find("\n" + series + " ");
    if (at == std::string::npos) throw std::runtime_error("no sample " + series);
    return std::stod(metrics.substr(at + series.size() + 2));
}

std::optional<std::uint16_t> metrics_port(const subprocess& daemon) {
    static const std::regex line("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics");
    std::smatch m;
    const std::string err = daemon.stderr_text();
    if (!std::regex_search(err, m, line)) return std::nullopt;
    return static_cast<std::uint16_t>(std::stoi(m[1]));
}

}  // namespace test_support
