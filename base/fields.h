// An ordered list of (name, value) string pairs kept in one buffer: the header
// fields of an HTTP message and of the api_call built from it. A message's fields
// cost two allocations (the buffer and the offsets), not two per field, and the
// list moves or copies as two blocks.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil {

class Fields {
 public:
  using Field = std::pair<std::string_view, std::string_view>;

  Fields() = default;
  Fields(std::initializer_list<Field> fields) {
    for (const auto& [k, v] : fields) emplace_back(k, v);
  }

  // `name` and `value` must not point into this list.
  void emplace_back(std::string_view name, std::string_view value) {
    auto at = static_cast<uint32_t>(buf_.size());
    buf_.append(name).append(value);
    spans_.push_back({at, static_cast<uint32_t>(name.size()), static_cast<uint32_t>(value.size())});
  }
  void push_back(const Field& f) { emplace_back(f.first, f.second); }
  // Appends to the i-th value (a folded line, a repeated field's next value).
  void append_value(size_t i, std::string_view more) {
    Span& s = spans_[i];
    if (s.at + s.name_len + s.value_len != buf_.size()) {
      // Not the last in the buffer: the field moves to its end (the old bytes stay unused).
      auto at = static_cast<uint32_t>(buf_.size());
      buf_.append(buf_, s.at, s.name_len + s.value_len);
      s.at = at;
    }
    buf_.append(more);
    s.value_len += static_cast<uint32_t>(more.size());
  }
  // The i-th name's bytes, to rewrite in place (e.g. lower-casing).
  char* name_data(size_t i) { return buf_.data() + spans_[i].at; }

  size_t size() const { return spans_.size(); }
  bool empty() const { return spans_.empty(); }
  size_t bytes() const { return buf_.size(); }
  void clear() {
    buf_.clear();
    spans_.clear();
  }
  void reserve(size_t fields, size_t bytes) {
    spans_.reserve(fields);
    buf_.reserve(bytes);
  }

  Field operator[](size_t i) const {
    const Span& s = spans_[i];
    std::string_view b(buf_);
    return {b.substr(s.at, s.name_len), b.substr(s.at + s.name_len, s.value_len)};
  }
  // The first value of `name` (compared as is), empty when absent.
  std::string_view get(std::string_view name) const {
    size_t i = find(name);
    return i < size() ? (*this)[i].second : std::string_view();
  }
  // Index of the first field called `name`, size() when absent.
  size_t find(std::string_view name) const {
    for (size_t i = 0; i < spans_.size(); ++i)
      if (spans_[i].name_len == name.size() && std::string_view(buf_).substr(spans_[i].at, name.size()) == name)
        return i;
    return spans_.size();
  }

  class const_iterator {
   public:
    const_iterator(const Fields* f, size_t i) : f_(f), i_(i) {}
    Field operator*() const { return (*f_)[i_]; }
    const_iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }

   private:
    const Fields* f_;
    size_t i_;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, spans_.size()}; }

  bool operator==(const Fields& o) const {
    if (size() != o.size()) return false;
    for (size_t i = 0; i < size(); ++i)
      if ((*this)[i] != o[i]) return false;
    return true;
  }

 private:
  struct Span {
    uint32_t at, name_len, value_len;  // name at buf_[at], its value right after it
  };
  std::string buf_;
  std::vector<Span> spans_;
};

}  // namespace vigil
