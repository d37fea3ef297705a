// The hash chain of a file sink (DESIGN.md §4 `chain{prev, hash}`): each line
// carries the hash of the previous one and its own, SHA-256 (HMAC-SHA-256 with
// audit.key_file) over the previous hash and the line as it was before sealing.
// Continues across rotation and restarts; `vigil audit verify` checks it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::audit {

constexpr std::string_view kGenesis = "0000000000000000000000000000000000000000000000000000000000000000";

// Lower-case hex of bytes, and back (false unless exactly 2*n hex digits).
std::string to_hex(const uint8_t* p, size_t n);
bool from_hex(std::string_view s, uint8_t* out, size_t n);

// hex(SHA-256(prev || line)) or, with a key, hex(HMAC-SHA-256(key, prev || line)); prev as 32 raw bytes.
std::string chain_hash(std::string_view key, std::string_view prev_hex, std::string_view line);

using Digest = std::array<uint8_t, 32>;

class Chain {
 public:
  explicit Chain(std::string key = {}, std::string_view prev_hex = kGenesis);
  // `line` (a JSON object) with ,"chain":{"prev":…,"hash":…} before its closing brace, into `out`.
  void seal(std::string_view line, std::string& out) {
    out.clear();
    seal_append(line, out);
  }
  // The same, appended to `out` (the file sink seals straight into its write buffer).
  void seal_append(std::string_view line, std::string& out);
  std::string last() const { return std::string(last_hex_.data(), last_hex_.size()); }
  const Digest& last_digest() const { return last_; }
  // Back to an earlier point (lines sealed after it were not written).
  void reset(const Digest& d);

 private:
  struct HmacFree {
    void operator()(void* ctx) const;
  };
  std::string key_;
  std::unique_ptr<void, HmacFree> hmac_;  // HMAC_CTX keyed once (each line reuses its pads)
  Digest last_{};
  std::array<char, 64> last_hex_{};
};

// A sealed line's parts: the line as sealed over, and its prev and hash (false: not sealed).
bool unseal(std::string_view sealed, std::string_view& line, std::string_view& prev, std::string_view& hash);

struct Issue {
  std::string file;
  size_t line = 0;  // 1-based; 0: the file as a whole
  std::string what;
};

struct Verified {
  size_t files = 0, lines = 0, epochs = 0;
  std::vector<Issue> issues;  // in file order; empty: the chain holds
  std::vector<std::string> notes;  // not tampering (e.g. the oldest file continues rotated-out ones)
  std::string last_hash;
  uint64_t last_seq = 0;
  std::vector<std::pair<std::string, uint64_t>> chain;  // each sealed line's hash, and the last seq up to it
};

// Checks `files` as one chain, oldest first.
Verified verify(const std::vector<std::string>& files, std::string_view key);

// PATH's rotated files that exist (PATH.N .. PATH.1), oldest first, then PATH.
std::vector<std::string> with_rotated(const std::string& path);

}  // namespace vigil::audit
