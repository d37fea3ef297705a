// Signed checkpoints of a chained file (DESIGN.md §4 `checkpoint`): the file, the
// last seq and hash, the time, signed with Ed25519 (audit.signing_key, made by
// `vigil audit keygen`). Anyone holding a later checkpoint and the public key can
// tell a truncated tail or a deleted live file from an intact one.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/audit/chain.h"
#include "base/result.h"

namespace vigil::audit {

struct Checkpoint {
  std::string sink;  // the file sink's name (one chain each)
  std::string file;  // the live file's name (no directory)
  uint64_t seq = 0;  // the last event's seq in the chain
  std::string hash;  // the last line's hash
  std::string time;  // RFC 3339
  std::string node, boot_id;
  std::string signature;  // hex Ed25519 over signed_text()

  std::string signed_text() const;
};

class Signer {
 public:
  // A key file as `vigil audit keygen` writes it: the 32-byte seed in hex.
  static Result<Signer> load(const std::string& path);
  static Signer from_seed(const std::array<uint8_t, 32>& seed);
  void sign(Checkpoint& c) const;
  std::string public_hex() const;

 private:
  std::array<uint8_t, 64> priv_{};
  std::array<uint8_t, 32> pub_{};
};

// A new key: (seed hex for the key file, public key hex).
std::pair<std::string, std::string> generate_key();
bool verify_signature(const Checkpoint& c, std::string_view public_hex);

std::string to_json_line(const Checkpoint& c);
// A checkpoint line (a checkpoints file) or a `checkpoint` event; nullopt otherwise.
std::optional<Checkpoint> parse_checkpoint(std::string_view line);

// Checks the chain of `files` against checkpoints (their signatures with `public_hex`
// when given): a checkpoint whose hash the files no longer hold is a truncated tail
// or rewritten lines. Adds to `v`.
void check_against(const std::vector<std::string>& files, const std::vector<Checkpoint>& checkpoints,
                   std::string_view public_hex, Verified& v);
// The sinks the checkpoints are of, sorted, once each.
std::vector<std::string> sinks_of(const std::vector<Checkpoint>& checkpoints);

}  // namespace vigil::audit
