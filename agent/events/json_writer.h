// A streaming JSON writer into a reused buffer: the event encoder's hot path
// (bench/encode_bench: several times faster than building an nlohmann tree).
// Strings are escaped as RFC 8259 requires; invalid UTF-8 becomes U+FFFD.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace vigil {

class JsonWriter {
 public:
  // Appends to `out` (reused between events: its capacity is kept). `out` holds the
  // document once the writer is gone (or after finish()).
  explicit JsonWriter(std::string& out) : out_(out), pos_(out.size()) {
    out_.resize(out_.capacity() > pos_ + 256 ? out_.capacity() : pos_ + 1024);
  }
  ~JsonWriter() { finish(); }
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;
  void finish() { out_.resize(pos_); }

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  // Inside an object: the next value's key. A string literal is one of the
  // encoder's own names (plain ASCII): copied without the escaping scan.
  template <size_t N>
  JsonWriter& key(const char (&k)[N]) {
    comma();
    char* p = room(N + 2);
    p[0] = '"';
    std::memcpy(p + 1, k, N - 1);
    p[N] = '"';
    p[N + 1] = ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& key(std::string_view k) {
    comma();
    string_raw(k);
    put(':');
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(std::string_view s) {
    comma();
    string_raw(s);
    return *this;
  }
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  // A value that is JSON already (a fragment this writer made before).
  JsonWriter& raw_value(std::string_view json) {
    comma();
    put(json);
    return *this;
  }
  JsonWriter& value(bool b) {
    comma();
    put(b ? std::string_view("true") : std::string_view("false"));
    return *this;
  }
  template <class T>
    requires std::is_integral_v<T>
  JsonWriter& value(T n) {
    comma();
    char* p = room(24);
    pos_ -= 24 - static_cast<size_t>(std::to_chars(p, p + 24, n).ptr - p);
    return *this;
  }
  template <class T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  template <size_t N, class T>
  JsonWriter& field(const char (&k)[N], const T& v) {
    key(k);
    return value(v);
  }

 private:
  // n writable bytes at the cursor, which moves past them. The buffer grows by
  // doubling; no per-byte library call (std::string's += is out of line).
  char* room(size_t n) {
    if (pos_ + n > out_.size()) grow(n);
    char* p = out_.data() + pos_;
    pos_ += n;
    return p;
  }
  void grow(size_t n);
  void put(char c) { *room(1) = c; }
  void put(std::string_view s) { std::memcpy(room(s.size()), s.data(), s.size()); }
  JsonWriter& open(char c) {
    comma();
    put(c);
    first_ = true;
    return *this;
  }
  JsonWriter& close(char c) {
    put(c);
    first_ = false;
    return *this;
  }
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_) put(',');
    first_ = false;
  }
  void string_raw(std::string_view s);

  std::string& out_;
  size_t pos_;  // the document's end; out_ is longer while the writer works
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace vigil
