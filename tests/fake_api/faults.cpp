#include "fake_api/faults.hpp"

namespace fake_api {
namespace {

bool every(std::uint32_t k, std::uint64_t seq) { return k != 0 && seq % k == 0; }

}  // namespace

fault_action next_fault(faults& f, std::uint64_t seq) {
    if (f.never_answer) return fault_action::never_answer;
    if (every(f.reset_every_kth, seq)) return fault_action::reset;
    if (f.fail_burst > 0) {
        --f.fail_burst;
        return fault_action::fail;
    }
    if (every(f.fail_every_kth, seq)) return fault_action::fail;
    if (every(f.rate_limit_every_kth, seq)) return fault_action::rate_limit;
    if (every(f.truncate_every_kth, seq)) return fault_action::truncate;
    if (every(f.malformed_every_kth, seq)) return fault_action::malformed;
    if (every(f.wrong_content_type_every_kth, seq)) return fault_action::wrong_content_type;
    return fault_action::none;
}

}  // namespace fake_api
