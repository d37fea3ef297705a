#include "agent/apimap/sensitive.h"

#include <hs/hs.h>

#include <array>
#include <regex>

#include <fmt/format.h>

#include "agent/apimap/auth.h"
#include "agent/apimap/template.h"

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

bool iban_valid(std::string_view s) {
  if (s.size() < 15 || s.size() > 34) return false;
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
  if (s.size() != 11 || s[3] != '-' || s[6] != '-') return false;
  int area = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
  int group = (s[4] - '0') * 10 + (s[5] - '0');
  int serial = std::stoi(std::string(s.substr(7)));
  return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
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
      size_t n = std::count_if(m.begin(), m.end(), digit);
      return n >= 10 && n <= 15 && !digit(b) && b != '+' && !digit(a) && !alnum(b) && a != '-';
    }
    case kPaymentCard: {
      if (digit(b) || digit(a) || b == '-' || a == '-' || alnum(b) || alnum(a) || b == '.' || a == '.') return false;
      char first = m[0];
      if (first < '2' || first > '6') return false;
      size_t distinct = 0;
      std::array<bool, 10> seen{};
      for (char c : m)
        if (digit(c) && !seen[c - '0']) seen[c - '0'] = true, ++distinct;
      return distinct >= 2 && luhn_valid(m);
    }
    case kIban:
      return !alnum(b) && !alnum(a) && iban_valid(m);
    case kUsSsn:
      return !digit(b) && b != '-' && !digit(a) && a != '-' && us_ssn_valid(m);
    case kJwt:
      return !word(b) && !word(a) && a != '.' && parse_jwt(m).has_value();
    case kAwsAccessKey:
    case kStripeKey:
    case kGithubToken:
      return !alnum(b) && !alnum(a);
    case kGcpApiKey:
      return !word(b) && !word(a);
    case kPrivateKey:
    case kPasswordField:
      return true;
  }
  return false;
}

const std::vector<SensitivePattern>& sensitive_patterns() {
  static const std::vector<SensitivePattern> kPatterns = {
      {kEmail, R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24})", false},
      {kPhone, R"(\+[1-9][0-9]{9,14})", false},
      {kPhone, R"(\+?1?[ .\-]?\(?[2-9][0-9]{2}\)?[ .\-][0-9]{3}[ .\-][0-9]{4})", false},
      {kPaymentCard, R"([2-6][0-9]{3}([ \-]?[0-9]{4}){2}[ \-]?[0-9]{1,7})", false},
      {kIban, R"([A-Z]{2}[0-9]{2}[A-Z0-9]{11,30})", false},
      {kUsSsn, R"([0-9]{3}-[0-9]{2}-[0-9]{4})", false},
      {kJwt, R"(eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*)", false},
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
