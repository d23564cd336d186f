#include "util/text.hpp"

#include <algorithm>

namespace isync::util {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    return text;
}

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string to_lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

std::string printable(std::string_view text, std::size_t limit, bool ascii_only) {
    std::size_t cut = std::min(limit, text.size());
    // Back up over UTF-8 continuation bytes so a cut never splits a character.
    if (cut < text.size())
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(cut + 3);
    for (const char c : text.substr(0, cut)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || (ascii_only && u > 0x7f)) {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xf];
        } else {
            out += c;
        }
    }
    if (cut < text.size()) out += "...";
    return out;
}

}  // namespace isync::util
