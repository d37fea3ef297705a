// Path templates: raw request paths -> "/users/{userId}/orders/{orderId}". The
// collectors hand over raw paths; the inventory owns templating. A segment becomes
// a parameter from one sample when it is shaped like an id (number, UUID, hash,
// token, date, email, high entropy); words stay literal until their parent has
// many distinct, mostly one-off children (the cardinality rule); hints and
// declared specs win over any guess.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <tsl/robin_map.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace vigil::apimap {

// What one concrete segment value looks like (a bit set when merged over values).
enum ParamType : uint8_t {
  kTypeNone = 0,
  kTypeInteger = 1,
  kTypeUuid = 2,
  kTypeDate = 4,
  kTypeString = 8,
};
// The shape of one segment taken alone: kTypeNone = a word (stays literal).
ParamType classify_segment(std::string_view seg);
// Never a parameter at any depth: "api", versions ("v1", "v2beta1").
bool never_param(std::string_view seg);
// "users" -> "userId", "categories" -> "categoryId", "" -> "id".
std::string param_name_for(std::string_view parent);
// The OpenAPI-ish name of a type set: integer | uuid | date | string.
std::string_view type_name(uint8_t mask);

struct TemplateParam {
  std::string name;
  uint8_t type = kTypeNone;  // of this value
  int64_t int_value = -1;    // integer values (sequential-id detection)
};

struct Templated {
  std::string path;  // the template
  std::vector<TemplateParam> params;
  bool collapsed = false;  // this call made a parent collapse: older templates may change
};

// A pattern such as "/api/v1/users/{id}" or "/files/{fileId}.pdf".
class PathPattern {
 public:
  static PathPattern parse(std::string_view pattern);
  // The params when `path` matches, in order; nullptr-like false when not.
  bool match(std::string_view path, std::vector<TemplateParam>* params) const;
  const std::string& text() const { return text_; }
  size_t literal_segments() const { return literals_; }

 private:
  struct Seg {
    bool param = false;
    std::string literal;  // or the param's prefix
    std::string name, suffix;
  };
  std::string text_;
  std::vector<Seg> segs_;
  size_t literals_ = 0;
};

struct TemplaterOptions {
  size_t collapse_min_children = 8;  // more distinct words than this under one parent...
  double collapse_once_ratio = 0.5;  // ...with more than this share seen once -> a parameter
  uint64_t collapse_min_visits = 32;  // judged once the parent was visited this often (not at startup)
  size_t max_literal_children = 256;
  // Bounds on what remote peers can make the tries hold (security review F12):
  // scopes (service, role, host) kept, the least recently used forgotten first;
  // nodes in all (about 160 bytes each), past which other scopes are forgotten
  // and, when one scope holds them all, it stops growing; path depth learnt.
  size_t max_scopes = 4096;
  size_t max_nodes = 262144;
  size_t max_depth = 32;
  bool memo = true;  // remember templated paths (off: every call walks the trie; tests compare)
};

// Hash and equality that look up std::string keys by string_view (no allocation).
// XXH3 (libxxhash, inlined): a tenth of std::hash's instructions on the short keys a
// call looks up (path segments, scopes, endpoint keys; bench/inventory_bench.cc).
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return XXH3_64bits(s.data(), s.size()); }
};
// Open addressing with a power-of-two table (tsl::robin_map): the inventory looks
// up several of these per call, and std::unordered_map's node walk and modulo by a
// prime were a fifth of a header-only call (bench/inventory_bench.cc). Values move
// on rehash: keep what others point at behind a unique_ptr.
template <typename V>
using StringMap = tsl::robin_map<std::string, V, StringViewHash, std::equal_to<>, std::allocator<std::pair<std::string, V>>, true>;

// A bit set over a table of names (auth schemes, sensitive classes) and back.
template <size_t N>
std::vector<std::string> names_of(uint16_t mask, const std::array<std::string_view, N>& table) {
  std::vector<std::string> out;
  for (size_t b = 0; b < N; ++b)
    if (mask & (1u << b)) out.emplace_back(table[b]);
  return out;
}
template <size_t N>
uint16_t mask_of(const std::vector<std::string>& names, const std::array<std::string_view, N>& table) {
  uint16_t m = 0;
  for (const auto& n : names)
    for (size_t b = 0; b < N; ++b)
      if (table[b] == n) m |= static_cast<uint16_t>(1u << b);
  return m;
}

// One trie per scope (service, role, host).
class Templater {
 public:
  explicit Templater(TemplaterOptions o = {});
  ~Templater();
  Templater(Templater&&) noexcept;
  Templater& operator=(Templater&&) noexcept;

  // Forced templates: path hints first, then declared spec paths (those win).
  void add_pattern(std::string_view pattern, bool declared);
  // `learn` = false: judge the path without recording it (404s, scanners).
  Templated apply(std::string_view scope, std::string_view path, bool learn);
  // The same into `out`, reusing its buffers.
  void apply(std::string_view scope, std::string_view path, bool learn, Templated& out);
  // The per-call path: the memo's copy when the path was templated before (valid until
  // the next call), else `out` filled in.
  const Templated& resolve(std::string_view scope, std::string_view path, bool learn, Templated& out);
  // A template seen before, re-judged after a collapse (its params stay params).
  std::string retemplate(std::string_view scope, std::string_view tmpl);
  // Restores a template (from the store) into its scope's trie.
  void restore(std::string_view scope, std::string_view tmpl);
  // Prefixes of collapsed nodes, "scope\x1e/users", for the store.
  std::vector<std::string> collapsed_nodes() const;
  void restore_collapsed(std::string_view node);
  size_t node_count() const { return nodes_; }
  size_t scope_count() const { return roots_.size(); }
  uint64_t scopes_forgotten() const { return scopes_forgotten_; }

  struct Node;

 private:
  Node& root(std::string_view scope);
  // Forgets least recently used scopes other than `keep` until at most
  // `max_scopes` remain and nodes_ <= `max_nodes`.
  void forget_scopes(size_t max_scopes, size_t max_nodes, const Node* keep);
  // Full: other scopes give way to the one just learnt into.
  void make_room(std::string_view scope);
  void walk(std::string_view scope, std::string_view path, bool learn, Templated& out,
            std::vector<std::pair<Node*, bool>>* chain);
  // A learning walk, then the sibling-structure rule when the walk grew the trie;
  // `chain` (the memo's) holds the first walk's nodes.
  void learn_walk(std::string_view scope, std::string_view path, Templated& out,
                  std::vector<std::pair<Node*, bool>>* chain);
  // Collapses the nodes on `path` whose words have the same structure below them (see
  // same_structure). True when one collapsed.
  bool collapse_by_siblings(std::string_view scope, std::string_view path);
  // The memo of templated paths: direct-mapped by (scope, raw path).
  struct Memo {
    std::string key;
    Templated out;
    std::vector<std::pair<Node*, bool>> chain;  // nodes visited; true = reached as a literal
  };
  static constexpr size_t kMemoSlots = 4096;
  bool replay(const Memo& m);
  void forget();
  std::vector<Memo> memo_;
  std::string memo_key_;
  TemplaterOptions o_;
  std::vector<PathPattern> hints_, declared_;
  StringMap<std::unique_ptr<Node>> roots_;
  size_t nodes_ = 0;
  uint64_t clock_ = 0;  // root use stamps
  uint64_t scopes_forgotten_ = 0;
};

// Splits "/a/b/c" into {"a","b","c"}; "/" -> {""}.
void split_path(std::string_view path, std::vector<std::string_view>& out);

}  // namespace vigil::apimap
