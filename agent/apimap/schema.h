// Body schemas inferred from JSON bodies: types, properties, which are always
// present (required), string formats (email, uuid, date-time, date). Structure
// only: no value is kept. Mergeable, bounded in depth and width.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace vigil::apimap {

class Schema {
 public:
  static constexpr int kMaxDepth = 8;
  static constexpr size_t kMaxProperties = 64;

  Schema() = default;
  Schema(const Schema& o) { merge(o); }
  Schema& operator=(const Schema& o) {
    if (this != &o) {
      *this = Schema{};
      merge(o);
    }
    return *this;
  }
  Schema(Schema&&) noexcept = default;
  Schema& operator=(Schema&&) noexcept = default;

  // Parses `body` (false when it is not complete JSON) and folds its shape in.
  bool observe(std::string_view body);
  void observe_value(const nlohmann::json& value, int depth = 0);
  void merge(const Schema& other);
  uint32_t samples() const { return seen_; }
  bool empty() const { return seen_ == 0; }

  // A JSON Schema (OpenAPI 3.1 dialect).
  nlohmann::json to_json_schema() const;
  // Exact state, for the store and for merging exports.
  nlohmann::json to_state() const;
  static bool from_state(const nlohmann::json& j, Schema& out, int depth = 0);
  size_t memory_bytes() const;

 private:
  uint8_t types_ = 0;    // bit per JSON type (null, boolean, integer, number, string, object, array)
  uint8_t formats_ = 0;  // string formats seen; `all_strings_format_` keeps the one every string had
  uint8_t all_format_ = 0xff;
  uint32_t seen_ = 0, objects_ = 0;
  std::vector<std::pair<std::string, std::unique_ptr<Schema>>> props_;
  std::unique_ptr<Schema> items_;
};

}  // namespace vigil::apimap
