#include "agent/audit/chain.h"

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include <fmt/format.h>

#include "base/zstd_file.h"

namespace vigil::audit {
namespace {

constexpr std::string_view kOpen = ",\"chain\":{\"prev\":\"";
constexpr std::string_view kMid = "\",\"hash\":\"";
constexpr std::string_view kClose = "\"}}";

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

struct Line {
  size_t file = 0, number = 0;
  std::string text;
};

std::array<uint8_t, 32> unhex32(std::string_view hex) {
  std::array<uint8_t, 32> out{};
  from_hex(hex, out.data(), out.size());
  return out;
}

}  // namespace

std::string to_hex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

bool from_hex(std::string_view s, uint8_t* out, size_t n) {
  if (s.size() != 2 * n) return false;
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < n; ++i) {
    int hi = v(s[2 * i]), lo = v(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

namespace {

void hex_into(const Digest& d, char* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < d.size(); ++i) {
    out[2 * i] = kDigits[d[i] >> 4];
    out[2 * i + 1] = kDigits[d[i] & 15];
  }
}

void digest(std::string_view key, const Digest& prev, std::string_view body, Digest& md) {
  if (key.empty()) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, prev.data(), prev.size());
    SHA256_Update(&c, body.data(), body.size());
    SHA256_Final(md.data(), &c);
    return;
  }
  HMAC_CTX c;
  HMAC_CTX_init(&c);
  HMAC_Init_ex(&c, key.data(), key.size(), EVP_sha256(), nullptr);
  HMAC_Update(&c, prev.data(), prev.size());
  HMAC_Update(&c, reinterpret_cast<const uint8_t*>(body.data()), body.size());
  unsigned len = 0;
  HMAC_Final(&c, md.data(), &len);
  HMAC_CTX_cleanup(&c);
}

}  // namespace

std::string chain_hash(std::string_view key, std::string_view prev_hex, std::string_view line) {
  Digest md;
  digest(key, unhex32(prev_hex), line, md);
  return to_hex(md.data(), md.size());
}

Chain::Chain(std::string key, std::string_view prev_hex) : key_(std::move(key)) {
  if (!from_hex(prev_hex, last_.data(), last_.size())) last_ = {};
  hex_into(last_, last_hex_.data());
  if (!key_.empty()) {
    HMAC_CTX* c = HMAC_CTX_new();
    if (c && HMAC_Init_ex(c, key_.data(), key_.size(), EVP_sha256(), nullptr)) hmac_.reset(c);
    else HMAC_CTX_free(c);
  }
}

void Chain::HmacFree::operator()(void* ctx) const { HMAC_CTX_free(static_cast<HMAC_CTX*>(ctx)); }

void Chain::reset(const Digest& d) {
  last_ = d;
  hex_into(last_, last_hex_.data());
}

// The hash covers the line without its closing brace: what stays of it once sealed.
// One copy of the body (into `out`), no allocation once `out` has grown.
void Chain::seal_append(std::string_view line, std::string& out) {
  std::string_view body = line;
  if (!body.empty() && body.back() == '}') body.remove_suffix(1);
  Digest md;
  if (auto* c = static_cast<HMAC_CTX*>(hmac_.get())) {
    unsigned len = 0;
    if (!HMAC_Init_ex(c, nullptr, 0, nullptr, nullptr) || !HMAC_Update(c, last_.data(), last_.size()) ||
        !HMAC_Update(c, reinterpret_cast<const uint8_t*>(body.data()), body.size()) || !HMAC_Final(c, md.data(), &len))
      digest(key_, last_, body, md);
  } else {
    digest(key_, last_, body, md);
  }
  char hex[64];
  hex_into(md, hex);
  out.append(body);
  out.append(kOpen);
  out.append(last_hex_.data(), last_hex_.size());
  out.append(kMid);
  out.append(hex, sizeof hex);
  out.append(kClose);
  last_ = md;
  std::memcpy(last_hex_.data(), hex, sizeof hex);
}

bool unseal(std::string_view sealed, std::string_view& line, std::string_view& prev, std::string_view& hash) {
  size_t tail = kOpen.size() + 64 + kMid.size() + 64 + kClose.size();
  if (sealed.size() < tail) return false;
  std::string_view t = sealed.substr(sealed.size() - tail);
  if (!t.starts_with(kOpen) || !t.ends_with(kClose) || t.substr(kOpen.size() + 64, kMid.size()) != kMid) return false;
  prev = t.substr(kOpen.size(), 64);
  hash = t.substr(kOpen.size() + 64 + kMid.size(), 64);
  if (!is_hex64(prev) || !is_hex64(hash)) return false;
  line = sealed.substr(0, sealed.size() - tail);
  return true;
}

std::vector<std::string> with_rotated(const std::string& path) {
  // PATH.N, or PATH.N.zst when the sink compressed it (the plain one if both: it is the source).
  auto at = [&](int i) -> std::string {
    std::string p = fmt::format("{}.{}", path, i);
    if (std::filesystem::exists(p)) return p;
    if (std::filesystem::exists(p + ".zst")) return p + ".zst";
    return "";
  };
  std::vector<std::string> out;
  for (int i = 1; i < 10000; ++i) {
    std::string p = at(i);
    if (p.empty()) {
      // A gap (PATH.2 deleted, PATH.3 there) is for verify() to report: keep looking a little.
      bool later = false;
      for (int k = i + 1; k <= i + 8 && !later; ++k) later = !at(k).empty();
      if (!later) break;
      continue;
    }
    out.insert(out.begin(), p);
  }
  out.push_back(path);
  return out;
}

Verified verify(const std::vector<std::string>& files, std::string_view key) {
  Verified v;
  std::vector<Line> lines;
  for (size_t f = 0; f < files.size(); ++f) {
    size_t n = 0;
    auto st = for_each_line(files[f], [&](std::string_view text) {
      ++n;
      if (!text.empty()) lines.push_back({f, n, std::string(text)});
      return true;
    });
    if (!st) {
      v.issues.push_back({files[f], 0, fmt::format("cannot be read: {}", st.error().message)});
      continue;
    }
    ++v.files;
  }
  // Where each hash is, to tell a reordered line from a deleted one.
  std::unordered_map<std::string, size_t> at;
  std::vector<std::string_view> prevs(lines.size()), hashes(lines.size()), bodies(lines.size());
  std::vector<bool> sealed(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    sealed[i] = unseal(lines[i].text, bodies[i], prevs[i], hashes[i]);
    if (sealed[i]) at.emplace(std::string(hashes[i]), i);
  }
  auto where = [&](size_t i) { return fmt::format("line {} of {}", lines[i].number, files[lines[i].file]); };
  auto issue = [&](size_t i, std::string what) { v.issues.push_back({files[lines[i].file], lines[i].number, std::move(what)}); };
  std::string running;  // the hash the next line must name as prev
  size_t prev_line = SIZE_MAX, before_prev = SIZE_MAX;
  for (size_t i = 0; i < lines.size(); ++i) {
    ++v.lines;
    if (!sealed[i]) {
      issue(i, "not chained: a line written by something else than the agent, or inserted");
      continue;
    }
    if (chain_hash(key, prevs[i], bodies[i]) != hashes[i])
      issue(i, key.empty() ? "modified: its content does not match its hash"
                           : "modified: its content does not match its hash (or the HMAC key is not the agent's)");
    bool new_file = prev_line != SIZE_MAX && lines[prev_line].file != lines[i].file;
    if (prev_line == SIZE_MAX) {
      if (prevs[i] != kGenesis)
        v.notes.push_back(fmt::format("{} continues a chain from earlier files (rotated out, or not given)", where(i)));
    } else if (prevs[i] != running) {
      auto it = at.find(std::string(prevs[i]));
      if (before_prev != SIZE_MAX && prevs[i] == hashes[before_prev]) {
        issue(prev_line, fmt::format("inserted: {} continues the line before it", where(i)));
      } else if (it != at.end()) {
        issue(i, fmt::format("reordered: it follows {}, not {}", where(it->second), where(prev_line)));
      } else if (i + 1 < lines.size() && sealed[i + 1] && prevs[i + 1] == running && !new_file) {
        issue(i, "inserted: the next line continues the line before it");
        continue;  // the chain goes on from the line before
      } else if (new_file) {
        issue(i, fmt::format("{} does not continue {}: a rotated file is missing, or the files are out of order",
                             files[lines[i].file], files[lines[prev_line].file]));
      } else {
        issue(i, fmt::format("deleted: a line is missing between {} and it", where(prev_line)));
      }
    }
    if (bodies[i].find("\"kind\":\"epoch\"") != std::string_view::npos) ++v.epochs;
    if (size_t s = bodies[i].find("\"seq\":"); s != std::string_view::npos)
      v.last_seq = std::strtoull(bodies[i].data() + s + 6, nullptr, 10);
    running = std::string(hashes[i]);
    v.chain.emplace_back(running, v.last_seq);
    before_prev = prev_line;
    prev_line = i;
  }
  v.last_hash = running;
  return v;
}

}  // namespace vigil::audit
