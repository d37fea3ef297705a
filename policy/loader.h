// EgressPolicy YAML -> validated model. A file with any error is rejected
// whole; every error names file, line, column and what is wrong.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "policy/model.h"

namespace vigil::policy {

struct LoadErrors {
  std::vector<std::string> errors;  // "file:line:col: message"
};

// Parses every document of one file. On any error, no policy of the file is returned.
Result<std::vector<EgressPolicy>> load_policies(std::string_view yaml, std::string_view source);
Result<std::vector<EgressPolicy>> load_policy_file(const std::string& path);

// "10.0.0.0/8", "::1/128", "127.0.0.2" (a host); errors say why.
Result<Cidr> parse_cidr(std::string_view text);
// "api.stripe.com", "*.s3.amazonaws.com" -> lower-case; errors say why.
Result<std::string> parse_fqdn(std::string_view text);

}  // namespace vigil::policy
