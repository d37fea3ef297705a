#include "agent/apimap/schema.h"

#include <algorithm>

#include "agent/apimap/template.h"
#include "agent/events/secrets.h"

namespace vigil::apimap {
namespace {

enum : uint8_t { kNull = 1, kBool = 2, kInt = 4, kNum = 8, kStr = 16, kObj = 32, kArr = 64 };
enum : uint8_t { kFmtEmail = 1, kFmtUuid = 2, kFmtDateTime = 4, kFmtDate = 8 };

uint8_t string_format(const std::string& s) {
  if (s.size() == 36 && classify_segment(s) == kTypeUuid) return kFmtUuid;
  if (s.size() >= 10 && classify_segment(s.substr(0, 10)) == kTypeDate)
    return s.size() == 10 ? kFmtDate : (s.size() >= 19 ? kFmtDateTime : 0);
  size_t at = s.find('@');
  if (at != std::string::npos && at > 0 && s.find('.', at + 2) != std::string::npos && s.find(' ') == std::string::npos)
    return kFmtEmail;
  return 0;
}

const char* format_name(uint8_t f) {
  switch (f) {
    case kFmtEmail: return "email";
    case kFmtUuid: return "uuid";
    case kFmtDateTime: return "date-time";
    case kFmtDate: return "date";
  }
  return nullptr;
}

}  // namespace

bool Schema::observe(std::string_view body) {
  auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return false;
  observe_value(j);
  return true;
}

void Schema::observe_value(const nlohmann::json& v, int depth) {
  ++seen_;
  switch (v.type()) {
    case nlohmann::json::value_t::null: types_ |= kNull; break;
    case nlohmann::json::value_t::boolean: types_ |= kBool; break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: types_ |= kInt; break;
    case nlohmann::json::value_t::number_float: types_ |= kNum; break;
    case nlohmann::json::value_t::string: {
      types_ |= kStr;
      uint8_t f = string_format(v.get_ref<const std::string&>());
      formats_ |= f;
      all_format_ &= f ? f : 0;
      break;
    }
    case nlohmann::json::value_t::object:
      types_ |= kObj;
      ++objects_;
      if (depth >= kMaxDepth) break;
      for (const auto& [key, child] : v.items()) {
        // Keys are stored and exported: one shaped like a token (a map keyed by
        // API keys or session ids) is not kept as it is (security review F11).
        std::string_view k = secrets::looks_like_token(key) ? secrets::kRedacted : std::string_view(key);
        auto it = std::find_if(props_.begin(), props_.end(), [&](const auto& p) { return p.first == k; });
        if (it == props_.end()) {
          if (props_.size() >= kMaxProperties) continue;
          props_.emplace_back(std::string(k), std::make_unique<Schema>());
          it = props_.end() - 1;
        }
        it->second->observe_value(child, depth + 1);
      }
      break;
    case nlohmann::json::value_t::array:
      types_ |= kArr;
      if (depth >= kMaxDepth) break;
      for (const auto& item : v) {
        if (!items_) items_ = std::make_unique<Schema>();
        items_->observe_value(item, depth + 1);
      }
      break;
    default: break;
  }
}

void Schema::merge(const Schema& o) {
  types_ |= o.types_;
  formats_ |= o.formats_;
  all_format_ &= o.all_format_;
  seen_ += o.seen_;
  objects_ += o.objects_;
  for (const auto& [k, child] : o.props_) {
    auto it = std::find_if(props_.begin(), props_.end(), [&](const auto& p) { return p.first == k; });
    if (it == props_.end()) {
      if (props_.size() >= kMaxProperties) continue;
      props_.emplace_back(k, std::make_unique<Schema>());
      it = props_.end() - 1;
    }
    it->second->merge(*child);
  }
  if (o.items_) {
    if (!items_) items_ = std::make_unique<Schema>();
    items_->merge(*o.items_);
  }
}

nlohmann::json Schema::to_json_schema() const {
  nlohmann::json s = nlohmann::json::object();
  std::vector<std::string> types;
  if (types_ & kNull) types.push_back("null");
  if (types_ & kBool) types.push_back("boolean");
  if ((types_ & kNum)) types.push_back("number");
  else if (types_ & kInt) types.push_back("integer");
  if (types_ & kStr) types.push_back("string");
  if (types_ & kObj) types.push_back("object");
  if (types_ & kArr) types.push_back("array");
  if (types.size() == 1) s["type"] = types[0];
  else if (!types.empty()) s["type"] = types;
  if ((types_ & kStr) && all_format_ != 0 && all_format_ != 0xff)
    if (const char* f = format_name(all_format_)) s["format"] = f;
  if (types_ & kObj) {
    nlohmann::json props = nlohmann::json::object();
    std::vector<std::string> required;
    for (const auto& [k, child] : props_) {
      props[k] = child->to_json_schema();
      if (child->seen_ >= objects_) required.push_back(k);
    }
    s["properties"] = props;
    if (!required.empty()) s["required"] = required;
  }
  if ((types_ & kArr)) s["items"] = items_ ? items_->to_json_schema() : nlohmann::json::object();
  return s;
}

nlohmann::json Schema::to_state() const {
  nlohmann::json j = {{"t", types_}, {"f", formats_}, {"af", all_format_}, {"n", seen_}, {"o", objects_}};
  if (!props_.empty()) {
    nlohmann::json p = nlohmann::json::array();
    for (const auto& [k, child] : props_) p.push_back({k, child->to_state()});
    j["p"] = p;
  }
  if (items_) j["i"] = items_->to_state();
  return j;
}

bool Schema::from_state(const nlohmann::json& j, Schema& out, int depth) {
  if (!j.is_object() || depth > kMaxDepth + 1) return false;
  out = Schema{};
  out.types_ = j.value("t", uint8_t{0});
  out.formats_ = j.value("f", uint8_t{0});
  out.all_format_ = j.value("af", uint8_t{0xff});
  out.seen_ = j.value("n", uint32_t{0});
  out.objects_ = j.value("o", uint32_t{0});
  if (auto p = j.find("p"); p != j.end() && p->is_array()) {
    for (const auto& kv : *p) {
      if (!kv.is_array() || kv.size() != 2 || !kv[0].is_string() || out.props_.size() >= kMaxProperties) return false;
      auto child = std::make_unique<Schema>();
      if (!from_state(kv[1], *child, depth + 1)) return false;
      out.props_.emplace_back(kv[0].get<std::string>(), std::move(child));
    }
  }
  if (auto i = j.find("i"); i != j.end()) {
    out.items_ = std::make_unique<Schema>();
    if (!from_state(*i, *out.items_, depth + 1)) return false;
  }
  return true;
}

size_t Schema::memory_bytes() const {
  size_t n = sizeof(*this) + props_.capacity() * sizeof(props_[0]);
  for (const auto& [k, c] : props_) n += k.capacity() + c->memory_bytes();
  if (items_) n += items_->memory_bytes();
  return n;
}

}  // namespace vigil::apimap
