#include "agent/apimap/sensitive.h"

#include <hs/hs.h>

#include <algorithm>
#include <array>
#include <regex>

#include <fmt/format.h>
#include <phonenumbers/phonenumberutil.h>

#include "agent/apimap/auth.h"
#include "agent/apimap/template.h"
#include "base/text.h"

namespace vigil::apimap {
namespace {

constexpr std::array<std::string_view, kSensitiveClassCount> kNames = {
    "email",       "phone",      "payment_card", "iban",       "us_ssn",      "jwt",
    "aws_access_key", "gcp_api_key", "github_token", "stripe_key", "private_key", "password_field"};

bool digit(char c) { return c >= '0' && c <= '9'; }
bool alnum(char c) { return digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool word(char c) { return alnum(c) || c == '_' || c == '-'; }

char before(std::string_view d, size_t from) { return from == 0 ? ' ' : d[from - 1]; }
char after(std::string_view d, size_t to) { return to >= d.size() ? ' ' : d[to]; }

}  // namespace

std::string_view sensitive_name(int cls) { return cls >= 0 && cls < kSensitiveClassCount ? kNames[cls] : "?"; }

std::vector<std::string> sensitive_names(uint16_t mask) { return names_of(mask, kNames); }

uint16_t sensitive_mask_from_names(const std::vector<std::string>& names) { return mask_of(names, kNames); }

bool luhn_valid(std::string_view s) {
  int sum = 0, n = 0;
  for (size_t i = s.size(); i-- > 0;) {
    if (!digit(s[i])) continue;
    int d = s[i] - '0';
    if (n++ % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return n >= 13 && n <= 19 && sum % 10 == 0;
}

namespace {

// IBAN length per country (the SWIFT IBAN registry): a mod-97-valid string of another
// length is not an IBAN of that country.
int iban_length(char a, char b) {
  struct Entry {
    char cc[3];
    int len;
  };
  static constexpr Entry kLengths[] = {
      {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
      {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28},
      {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23},
      {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26},
      {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
      {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18},
      {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24},
      {"SC", 31}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24},
      {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
  };
  for (const auto& e : kLengths)
    if (e.cc[0] == a && e.cc[1] == b) return e.len;
  return 0;
}

// The characters of a grouped number without its separators, when every separator
// is the same one of `seps` and stands alone ("4111 1111 1111 1111", "DE89-3704-...").
bool compact(std::string_view m, std::string_view seps, std::string& out) {
  out.clear();
  char sep = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    char c = m[i];
    if (seps.find(c) == std::string_view::npos) {
      out.push_back(c);
      continue;
    }
    if ((sep && c != sep) || i == 0 || i + 1 == m.size() || seps.find(m[i + 1]) != std::string_view::npos) return false;
    sep = c;
  }
  return true;
}

// Whether the card number `d` (its digits) belongs to an issuer range that
// exists (the published IIN ranges and lengths of the card schemes).
bool card_issuer_valid(std::string_view d) {
  size_t n = d.size();
  auto prefix = [&](size_t k) {
    int v = 0;
    for (size_t i = 0; i < k; ++i) v = v * 10 + (d[i] - '0');
    return v;
  };
  int p2 = prefix(2), p3 = prefix(3), p4 = prefix(4), p6 = n >= 6 ? prefix(6) : 0;
  bool len16_19 = n >= 16 && n <= 19;
  if (d[0] == '4') return n == 13 || n == 16 || n == 19;                                  // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n == 16;                // Mastercard
  if (p4 >= 2200 && p4 <= 2204) return len16_19;                                          // Mir
  if (p2 == 34 || p2 == 37) return n == 15;                                               // American Express
  if ((p3 >= 300 && p3 <= 305) || p4 == 3095 || p2 == 36 || p2 == 38 || p2 == 39) return n >= 14 && n <= 19;  // Diners
  if (p4 >= 3528 && p4 <= 3589) return len16_19;                                          // JCB
  if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 || (p6 >= 622126 && p6 <= 622925)) return len16_19;  // Discover
  if (p2 == 62) return len16_19;                                                          // UnionPay
  if (p4 == 5019) return n == 16;                                                         // Dankort
  if (p2 == 50 || (p2 >= 56 && p2 <= 58) || p2 == 67 || p2 == 63) return n >= 12 && n <= 19;  // Maestro
  if (p2 == 60) return n == 16;                                                           // RuPay
  return false;
}

// A bare nine-digit SSN counts only when the words before it say so.
bool ssn_context(std::string_view d, size_t from) {
  std::string_view before = d.substr(from > 40 ? from - 40 : 0, from > 40 ? 40 : from);
  for (std::string_view w : {"ssn", "social security", "social_security", "socialsecurity"})
    if (text::contains_ascii_ci(before, w)) return true;
  return false;
}

// Secrets are random: a "token" of few distinct characters (a placeholder, a run of
// one letter) is not one.
bool looks_random(std::string_view body) {
  std::array<bool, 128> seen{};
  size_t distinct = 0, digits = 0, upper = 0, lower = 0;
  for (char c : body) {
    auto u = static_cast<unsigned char>(c);
    if (u < 128 && !seen[u]) seen[u] = true, ++distinct;
    digits += digit(c);
    upper += c >= 'A' && c <= 'Z';
    lower += c >= 'a' && c <= 'z';
  }
  return distinct * 3 >= body.size() && ((digits > 0 && upper + lower > 0) || (upper > 0 && lower > 0));
}

}  // namespace

bool phone_valid(std::string_view s) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  static const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber n;
  // Without a leading '+' the number is read as North American (the only national form
  // the patterns take).
  return util->Parse(std::string(s), "US", &n) == PhoneNumberUtil::NO_PARSING_ERROR && util->IsValidNumber(n);
}

bool iban_valid(std::string_view s) {
  if (s.size() < 15 || s.size() > 34) return false;
  if (iban_length(s[0], s[1]) != static_cast<int>(s.size())) return false;
  // Move the first four characters to the end; letters count as 10..35; mod 97 == 1.
  int rem = 0;
  for (size_t k = 0; k < s.size(); ++k) {
    char c = s[(k + 4) % s.size()];
    if (digit(c)) {
      rem = (rem * 10 + (c - '0')) % 97;
    } else if (c >= 'A' && c <= 'Z') {
      int v = c - 'A' + 10;
      rem = (rem * 100 + v) % 97;
    } else {
      return false;
    }
  }
  return rem == 1;
}

bool us_ssn_valid(std::string_view s) {
  std::string d;
  if (s.size() == 11) {
    if (s[3] != s[6] || (s[3] != '-' && s[3] != ' ') || !compact(s, " -", d)) return false;
  } else if (s.size() == 9) {
    d.assign(s);
  } else {
    return false;
  }
  if (d.size() != 9 || !std::all_of(d.begin(), d.end(), digit)) return false;
  int area = std::stoi(d.substr(0, 3)), group = std::stoi(d.substr(3, 2)), serial = std::stoi(d.substr(5));
  // Never issued: area 000, 666 and 900-999, group 00, serial 0000; and the numbers the
  // SSA voided after they were printed (wallet inserts, advertising).
  if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) return false;
  for (std::string_view voided : {"078051120", "219099999", "457555462"})
    if (d == voided) return false;
  return true;
}

bool validate_match(int cls, std::string_view d, size_t from, size_t to) {
  if (cls == kPhone)  // an optional leading separator is not part of the number
    while (from < to && (d[from] == ' ' || d[from] == '.' || d[from] == '-')) ++from;
  std::string_view m = d.substr(from, to - from);
  char b = before(d, from), a = after(d, to);
  switch (cls) {
    case kEmail:
      return !(alnum(b) || b == '.' || b == '_' || b == '%' || b == '+' || b == '-') && !alnum(a) && a != '-';
    case kPhone: {
      // A form body encodes the leading '+' as %2B.
      std::string num = m.starts_with("%2B") ? "+" + std::string(m.substr(3)) : std::string(m);
      size_t n = std::count_if(num.begin(), num.end(), digit);
      return n >= 8 && n <= 15 && !digit(b) && b != '+' && !digit(a) && !alnum(b) && a != '-' && !alnum(a) &&
             !(a == '.' && digit(after(d, to + 1))) && phone_valid(num);
    }
    case kPaymentCard: {
      // A full stop ends a sentence, unless digits follow or precede it (a decimal, a version).
      bool decimal = (a == '.' && digit(after(d, to + 1))) || (b == '.' && from >= 2 && digit(d[from - 2]));
      if (alnum(b) || alnum(a) || b == '-' || a == '-' || decimal) return false;
      std::string digits;
      if (!compact(m, " -", digits) || digits.size() < 12 || digits.size() > 19) return false;
      size_t distinct = 0;
      std::array<bool, 10> seen{};
      for (char c : digits)
        if (!seen[c - '0']) seen[c - '0'] = true, ++distinct;
      return distinct >= 2 && card_issuer_valid(digits) && luhn_valid(digits);
    }
    case kIban: {
      std::string c;
      return !alnum(b) && !alnum(a) && b != '-' && a != '-' && compact(m, " -", c) && iban_valid(c);
    }
    case kUsSsn:
      return !digit(b) && b != '-' && !digit(a) && a != '-' && us_ssn_valid(m) &&
             (m.size() == 11 || ssn_context(d, from));
    case kJwt:
      return !word(b) && !word(a) && a != '.' && parse_jwt(m).has_value();
    case kAwsAccessKey:
      return !alnum(b) && !alnum(a) && looks_random(m.substr(4));
    case kStripeKey:
      return !alnum(b) && !alnum(a) && looks_random(m.substr(8));
    case kGithubToken:
      return !alnum(b) && !alnum(a) && b != '_' && a != '_' && looks_random(m.substr(m.find('_') + 1));
    case kGcpApiKey:
      return !word(b) && !word(a) && looks_random(m.substr(4));
    case kPrivateKey:
    case kPasswordField:
      return true;
  }
  return false;
}

const std::vector<SensitivePattern>& sensitive_patterns() {
  static const std::vector<SensitivePattern> kPatterns = {
      {kEmail, R"([A-Za-z0-9._%+\-]+(@|%40)[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24})", false},
      {kPhone, R"((\+|%2B)[1-9][0-9]{7,14})", false},
      {kPhone, R"(\+[1-9][0-9]{0,2}[ .\-]\(?[0-9]{1,5}\)?([ .\-][0-9]{2,5}){1,4})", false},  // +44 20 7219 3000
      {kPhone, R"(\+?1?[ .\-]?\(?[2-9][0-9]{2}\)?[ .\-][0-9]{3}[ .\-][0-9]{4})", false},
      {kPaymentCard, R"([2-6][0-9]{11,18})", false},
      {kPaymentCard, R"([2-6][0-9]{3}([ \-][0-9]{4}){2}[ \-][0-9]{1,7})", false},  // 4-4-4-4 and longer
      {kPaymentCard, R"(3[0-9]{3}[ \-][0-9]{6}[ \-][0-9]{4,5})", false},           // 4-6-5 (Amex), 4-6-4 (Diners)
      {kIban, R"([A-Z]{2}[0-9]{2}[A-Z0-9]{11,30})", false},
      {kIban, R"([A-Z]{2}[0-9]{2}([ \-][A-Z0-9]{4}){2,7}([ \-][A-Z0-9]{1,3})?)", false},  // printed in groups of 4
      {kUsSsn, R"([0-9]{3}-[0-9]{2}-[0-9]{4})", false},
      {kUsSsn, R"([0-9]{3} [0-9]{2} [0-9]{4})", false},
      {kUsSsn, R"([0-9]{9})", false},  // with "SSN" or "social security" before it
      {kJwt, R"(ey[A-Za-z0-9_\-]{4,}\.ey[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*)", false},
      {kAwsAccessKey, R"((AKIA|ASIA)[A-Z0-9]{16})", false},
      {kGcpApiKey, R"(AIza[0-9A-Za-z_\-]{35})", false},
      {kGithubToken, R"(gh[pousr]_[A-Za-z0-9]{36})", false},
      {kGithubToken, R"(github_pat_[A-Za-z0-9_]{82})", false},
      {kStripeKey, R"([sr]k_(live|test)_[A-Za-z0-9]{24,99})", false},
      {kPrivateKey, R"(-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----)", false},
      {kPasswordField, R"re("(password|passwd|pwd|pass|secret|client_secret)"[ \t]*:)re", true},
      {kPasswordField, R"((^|[?&;\n])(password|passwd|pwd)=)", true},
  };
  return kPatterns;
}

namespace {

class HyperscanScanner final : public SensitiveScanner {
 public:
  HyperscanScanner(hs_database_t* db, hs_scratch_t* scratch) : db_(db), scratch_(scratch) {}
  ~HyperscanScanner() override {
    hs_free_scratch(scratch_);
    hs_free_database(db_);
  }
  uint16_t scan(std::string_view data) override {
    std::array<uint16_t, 3> found{};
    scan_parts(data, {data.size(), data.size()}, found);
    return found[0];
  }
  void scan_parts(std::string_view data, const std::array<size_t, 2>& cuts, std::array<uint16_t, 3>& found) override {
    Ctx ctx{data, cuts, &found};
    hs_scan(db_, data.data(), static_cast<unsigned>(data.size()), 0, scratch_, &on_match, &ctx);
  }

 private:
  struct Ctx {
    std::string_view data;
    std::array<size_t, 2> cuts;
    std::array<uint16_t, 3>* found;
  };
  static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned, void* p) {
    auto* ctx = static_cast<Ctx*>(p);
    int cls = kClassOf[id];
    uint16_t& f = (*ctx->found)[from < ctx->cuts[0] ? 0 : from < ctx->cuts[1] ? 1 : 2];
    if (!(f & (1u << cls)) && validate_match(cls, ctx->data, from, to)) f |= 1u << cls;
    return 0;
  }
  static inline std::vector<int> kClassOf = [] {
    std::vector<int> v;
    for (const auto& p : sensitive_patterns()) v.push_back(p.cls);
    return v;
  }();
  hs_database_t* db_;
  hs_scratch_t* scratch_;
};

class RegexScanner final : public SensitiveScanner {
 public:
  RegexScanner() {
    for (const auto& p : sensitive_patterns()) {
      std::string re = p.regex;
      auto flags = std::regex::ECMAScript | std::regex::optimize;
      if (p.caseless) flags |= std::regex::icase;
      res_.push_back({p.cls, std::regex(re, flags)});
    }
  }
  uint16_t scan(std::string_view data) override {
    std::array<uint16_t, 3> found{};
    scan_parts(data, {data.size(), data.size()}, found);
    return found[0];
  }
  void scan_parts(std::string_view data, const std::array<size_t, 2>& cuts, std::array<uint16_t, 3>& found) override {
    for (const auto& [cls, re] : res_) {
      for (std::cregex_iterator it(data.data(), data.data() + data.size(), re), end; it != end; ++it) {
        size_t from = static_cast<size_t>(it->position(0)), to = from + static_cast<size_t>(it->length(0));
        uint16_t& f = found[from < cuts[0] ? 0 : from < cuts[1] ? 1 : 2];
        if (!(f & (1u << cls)) && validate_match(cls, data, from, to)) f |= 1u << cls;
      }
    }
  }

 private:
  std::vector<std::pair<int, std::regex>> res_;
};

}  // namespace

Result<std::unique_ptr<SensitiveScanner>> make_hyperscan_scanner() {
  const auto& pats = sensitive_patterns();
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
  for (size_t i = 0; i < pats.size(); ++i) {
    exprs.push_back(pats[i].regex);
    flags.push_back(HS_FLAG_SOM_LEFTMOST | (pats[i].caseless ? HS_FLAG_CASELESS : 0u));
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK,
                       nullptr, &db, &err) != HS_SUCCESS) {
    std::string msg = fmt::format("hyperscan: sensitive-data pattern {} does not compile: {}",
                                  err && err->expression >= 0 ? pats[err->expression].regex : "?",
                                  err ? err->message : "?");
    hs_free_compile_error(err);
    return Error{msg};
  }
  hs_scratch_t* scratch = nullptr;
  if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) {
    hs_free_database(db);
    return Error{"hyperscan: cannot allocate scratch space"};
  }
  return std::unique_ptr<SensitiveScanner>(new HyperscanScanner(db, scratch));
}

std::unique_ptr<SensitiveScanner> make_regex_scanner() { return std::make_unique<RegexScanner>(); }

}  // namespace vigil::apimap
