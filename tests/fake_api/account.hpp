#pragma once
// The fake API's `GET /v1/account-settings`: the account's applications and
// their domains, in the vendor's documented shape (with the fields the
// daemon must ignore: csm_enabled, sensor_version, muvs, account_name,
// last_created_baseline, accountName, alerts).

#include "api/account_settings.hpp"
#include "config/config.hpp"

#include <string>
#include <vector>

namespace fake_api {

using application = isync::api::application;

// One enabled application per app_id of `pairs` (its tlds as domains, in
// order), then a disabled application `PXsimoff` with `disabled.example`,
// which a daemon must not poll.
std::vector<application> applications_of(const std::vector<isync::config::pair>& pairs);

// The response body.
std::string render_account_settings(const std::vector<application>& apps);

}  // namespace fake_api
