#include "agent/audit/checkpoint.h"

#include <openssl/curve25519.h>
#include <openssl/rand.h>

#include <algorithm>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "base/file.h"

namespace vigil::audit {
namespace {


}  // namespace

std::string Checkpoint::signed_text() const {
  return fmt::format("vigil-checkpoint-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}", sink, file, seq, hash, time, node, boot_id);
}

Result<Signer> Signer::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) return Error{fmt::format("audit.signing_key: {}", text.error().message)};
  std::array<uint8_t, 32> seed{};
  if (!from_hex(trim_right(*text), seed.data(), seed.size()))
    return Error{fmt::format("audit.signing_key {}: not a key made by `vigil audit keygen` (64 hex digits)", path)};
  return from_seed(seed);
}

Signer Signer::from_seed(const std::array<uint8_t, 32>& seed) {
  Signer s;
  ED25519_keypair_from_seed(s.pub_.data(), s.priv_.data(), seed.data());
  return s;
}

void Signer::sign(Checkpoint& c) const {
  std::string text = c.signed_text();
  uint8_t sig[64];
  ED25519_sign(sig, reinterpret_cast<const uint8_t*>(text.data()), text.size(), priv_.data());
  c.signature = to_hex(sig, sizeof sig);
}

std::string Signer::public_hex() const { return to_hex(pub_.data(), pub_.size()); }

std::pair<std::string, std::string> generate_key() {
  std::array<uint8_t, 32> seed{};
  RAND_bytes(seed.data(), seed.size());
  Signer s = Signer::from_seed(seed);
  return {to_hex(seed.data(), seed.size()), s.public_hex()};
}

bool verify_signature(const Checkpoint& c, std::string_view public_hex) {
  uint8_t pub[32], sig[64];
  if (!from_hex(public_hex, pub, sizeof pub) || !from_hex(c.signature, sig, sizeof sig)) return false;
  std::string text = c.signed_text();
  return ED25519_verify(reinterpret_cast<const uint8_t*>(text.data()), text.size(), sig, pub) == 1;
}

std::string to_json_line(const Checkpoint& c) {
  nlohmann::ordered_json j = {{"time", c.time}, {"node", c.node}, {"boot_id", c.boot_id}, {"sink", c.sink},
                              {"file", c.file}, {"seq", c.seq},   {"hash", c.hash},       {"signature", c.signature}};
  return j.dump();
}

std::optional<Checkpoint> parse_checkpoint(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  const nlohmann::json* c = &j;
  if (j.value("kind", "") == "checkpoint") {  // an event: its checkpoint{} and envelope
    if (!j.contains("checkpoint") || !j["checkpoint"].is_object()) return std::nullopt;
    c = &j["checkpoint"];
  }
  try {
    Checkpoint cp;
    cp.sink = c->value("sink", "");
    cp.file = c->at("file").get<std::string>();
    cp.seq = c->at("seq").get<uint64_t>();
    cp.hash = c->at("hash").get<std::string>();
    cp.signature = c->at("signature").get<std::string>();
    cp.time = c->value("time", j.value("checkpoint_time", ""));
    cp.node = c->value("node", j.value("node", ""));
    cp.boot_id = c->value("boot_id", j.value("boot_id", ""));
    return cp;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::vector<std::string> sinks_of(const std::vector<Checkpoint>& checkpoints) {
  std::vector<std::string> out;
  for (const auto& c : checkpoints) out.push_back(c.sink);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void check_against(const std::vector<std::string>& files, const std::vector<Checkpoint>& checkpoints,
                   std::string_view public_hex, Verified& v) {
  std::unordered_map<std::string_view, size_t> index;
  for (size_t i = 0; i < v.chain.size(); ++i) index.emplace(v.chain[i].first, i);
  std::string last_file = files.empty() ? "" : files.back();
  for (const auto& c : checkpoints) {
    std::string what = fmt::format("checkpoint of {} (seq {}, hash {}…)", c.time, c.seq, c.hash.substr(0, 12));
    if (!public_hex.empty() && !verify_signature(c, public_hex)) {
      v.issues.push_back({"", 0, what + ": its signature does not verify with this key (forged or altered)"});
      continue;
    }
    auto it = index.find(c.hash);
    if (it != index.end()) continue;
    if (c.seq > v.last_seq)
      v.issues.push_back({last_file, 0, fmt::format("truncated: the {} is past the end of the files (they end at "
                                                     "seq {}): the tail or a whole file was removed", what, v.last_seq)});
    else
      v.issues.push_back({last_file, 0, fmt::format("the {} names a line the files no longer hold: lines were "
                                                     "rewritten or a file was replaced", what)});
  }
}

}  // namespace vigil::audit
