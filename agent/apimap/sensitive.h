// Sensitive data classes in captured bytes (headers, query, body prefix): one
// Hyperscan multi-pattern pass finds candidates, each is then validated (issuer
// ranges and Luhn for cards, country length and mod-97 for IBANs, area/group rules
// for SSNs, libphonenumber for phones, a decodable header for JWTs, boundaries for
// all). Only classes are reported, never values.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vigil::apimap {

enum SensitiveClass : int {
  kEmail,
  kPhone,
  kPaymentCard,
  kIban,
  kUsSsn,
  kJwt,
  kAwsAccessKey,
  kGcpApiKey,
  kGithubToken,
  kStripeKey,
  kPrivateKey,
  kPasswordField,
  kSensitiveClassCount
};
std::string_view sensitive_name(int cls);
std::vector<std::string> sensitive_names(uint16_t mask);
uint16_t sensitive_mask_from_names(const std::vector<std::string>& names);
// Secrets (tokens, keys) as opposed to personal data.
inline constexpr uint16_t kSecretClasses = (1u << kJwt) | (1u << kAwsAccessKey) | (1u << kGcpApiKey) |
                                           (1u << kGithubToken) | (1u << kStripeKey) | (1u << kPrivateKey) |
                                           (1u << kPasswordField);

bool luhn_valid(std::string_view digits_and_separators);
bool iban_valid(std::string_view iban);
bool us_ssn_valid(std::string_view ssn);  // "AAA-GG-SSSS", "AAA GG SSSS", "AAAGGSSSS"
bool phone_valid(std::string_view number);  // libphonenumber's rules; without '+': North American
// The class-specific check of a candidate at [from, to) of `data` (boundaries included).
bool validate_match(int cls, std::string_view data, size_t from, size_t to);

// One pattern per entry; several may name the same class.
struct SensitivePattern {
  int cls;
  const char* regex;
  bool caseless;
};
const std::vector<SensitivePattern>& sensitive_patterns();

class SensitiveScanner {
 public:
  virtual ~SensitiveScanner() = default;
  // A bit per SensitiveClass found in `data`. Not thread-safe (one scratch).
  virtual uint16_t scan(std::string_view data) = 0;
  // One pass over parts laid end to end: a match starting before cuts[0] is
  // reported in found[0], before cuts[1] in found[1], else in found[2].
  virtual void scan_parts(std::string_view data, const std::array<size_t, 2>& cuts, std::array<uint16_t, 3>& found) = 0;
};

// Hyperscan (the agent's).
Result<std::unique_ptr<SensitiveScanner>> make_hyperscan_scanner();
// std::regex over the same patterns: the baseline bench/ compares against.
std::unique_ptr<SensitiveScanner> make_regex_scanner();

}  // namespace vigil::apimap
