#include "agent/apimap/template.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <tuple>

#include "agent/events/secrets.h"
#include "base/text.h"

namespace vigil::apimap {
namespace {

using text::entropy_bits;
using text::is_alpha;
using text::is_digit;
using text::is_hex;
using text::is_uuid;
using text::split_extension;
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool all_of(std::string_view s, bool (*f)(char)) { return !s.empty() && std::all_of(s.begin(), s.end(), f); }

int num(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// YYYY-MM-DD, optionally followed by a time ("T10:00:00Z").
bool is_date(std::string_view s) {
  if (s.size() < 10) return false;
  for (size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u})
    if (!is_digit(s[i])) return false;
  if (s[4] != '-' || s[7] != '-') return false;
  int month = num(s.substr(5, 2)), day = num(s.substr(8, 2));
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  if (s.size() == 10) return true;
  return (s[10] == 'T' || s[10] == 't' || s[10] == ' ') && s.size() >= 13 && is_digit(s[11]) && is_digit(s[12]);
}

bool is_email(std::string_view s) {
  size_t at = s.find('@');
  return at != std::string_view::npos && at > 0 && s.find('.', at + 2) != std::string_view::npos &&
         s.back() != '.';
}

bool token_char(char c) {
  return is_digit(c) || is_alpha(c) || c == '_' || c == '-' || c == '+' || c == '=' || c == '~' || c == '%' ||
         c == '.';
}

// Words a collapsed parent keeps literal: they name a resource, not an instance.
bool keyword(std::string_view s) {
  if (s.size() < 2 || s.size() > 8) return false;
  static constexpr std::array<std::string_view, 24> kWords = {
      "me",     "self",   "current", "mine",  "my",      "all",    "new",      "search",
      "latest", "count",  "default", "list",  "recent",  "bulk",   "batch",    "export",
      "import", "stats",  "summary", "info",  "settings", "config", "profile", "health"};
  return std::find(kWords.begin(), kWords.end(), s) != kWords.end();
}

// A title made into a path segment: four or more lower-case words joined by '-'.
bool is_slug(std::string_view s) {
  if (s.size() < 16) return false;
  size_t words = 1, run = 0;
  for (char c : s) {
    if (c == '-') {
      if (run == 0) return false;
      ++words;
      run = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      ++run;
    } else {
      return false;
    }
  }
  return run > 0 && words >= 4;
}

bool is_param_segment(std::string_view s) { return s.size() >= 2 && s.front() == '{' && s.find('}') != std::string_view::npos; }

// "{userId}.pdf" -> {"userId", ".pdf"}
std::pair<std::string_view, std::string_view> param_parts(std::string_view s) {
  size_t close = s.find('}');
  return {s.substr(1, close - 1), s.substr(close + 1)};
}

}  // namespace

struct Templater::Node {
  uint64_t count = 0;
  uint64_t last_use = 0;  // a root's: when its scope was last templated
  bool collapsed = false;
  std::string param_name;  // a param node's name
  size_t once = 0;         // literal children seen exactly once
  StringMap<std::unique_ptr<Node>> literals;
  StringMap<std::unique_ptr<Node>> params;  // by extension ("" or ".pdf")
};

namespace {

// Two or more literal children, every one a slug or a keyword.
bool only_slugs(const Templater::Node& n) {
  size_t slugs = 0;
  for (const auto& [k, c] : n.literals) {
    if (is_slug(k))
      ++slugs;
    else if (!keyword(k))
      return false;
  }
  return slugs >= 2;
}

}  // namespace

void split_path(std::string_view path, std::vector<std::string_view>& out) {
  out.clear();
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

ParamType classify_segment(std::string_view s) {
  if (s.empty()) return kTypeNone;
  if (s == secrets::kRedacted) return kTypeString;  // a token the event path already hides
  // Most segments are plain lower-case words ("api", "users", "line-items"): one pass decides.
  if (s.size() < 20 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '-' || c == '_'; }))
    return kTypeNone;
  if (all_of(s, is_digit)) return s.size() <= 18 ? kTypeInteger : kTypeString;
  if (is_uuid(s)) return kTypeUuid;
  if (is_date(s)) return kTypeDate;
  if (s.size() > 64) return kTypeString;
  if (is_email(s)) return kTypeString;
  size_t digits = std::count_if(s.begin(), s.end(), is_digit);
  size_t letters = std::count_if(s.begin(), s.end(), is_alpha);
  if (s.size() >= 8 && digits > 0 && all_of(s, is_hex)) return kTypeString;  // hashes, object ids
  if (digits > 0 && all_of(s, [](char c) { return is_digit(c) || c == '.'; })) return kTypeString;  // 1.2.3
  if (!all_of(s, token_char)) return kTypeNone;
  if (s.size() >= 16 && digits > 0 && letters > 0) return kTypeString;  // tokens, base64
  if (s.size() >= 8 && digits >= 3 && letters >= 1) return kTypeString;  // usr_12345, ord-2024-0001
  if (s.size() >= 10 && digits >= 2 && entropy_bits(s) >= 3.2) return kTypeString;
  // Short ids that alternate letters and digits ("a1b2c3"), not words with a number
  // ("oauth2", "http2", "k8s", "base64", "ipv4v6").
  if (s.size() >= 5 && digits >= 2 && letters >= 2) {
    size_t flips = 0;
    for (size_t i = 1; i < s.size(); ++i) flips += is_digit(s[i]) != is_digit(s[i - 1]);
    if (flips >= 4) return kTypeString;
  }
  if (s.size() >= 20 && letters == s.size()) {
    size_t flips = 0;
    for (size_t i = 1; i < s.size(); ++i)
      if ((s[i] >= 'A' && s[i] <= 'Z') != (s[i - 1] >= 'A' && s[i - 1] <= 'Z')) ++flips;
    if (flips >= 8) return kTypeString;  // random mixed case, not camelCase words
  }
  return kTypeNone;
}

bool never_param(std::string_view s) {
  if (s == "api" || s == "API") return true;
  if (s.size() < 2 || (s[0] != 'v' && s[0] != 'V') || !is_digit(s[1])) return false;
  size_t i = 1;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i < s.size() && s[i] == '.') {  // v1.2
    while (i < s.size() && (is_digit(s[i]) || s[i] == '.')) ++i;
    return i == s.size();
  }
  while (i < s.size() && s[i] >= 'a' && s[i] <= 'z') ++i;  // v2beta
  while (i < s.size() && is_digit(s[i])) ++i;              // v2beta1
  return i == s.size();
}

std::string param_name_for(std::string_view parent) {
  if (parent.empty() || never_param(parent) || is_param_segment(parent)) return "id";
  std::string w;
  bool up = false;
  for (char c : parent) {
    if (c == '-' || c == '_' || c == '.' || c == ' ') {
      up = !w.empty();
      continue;
    }
    if (!is_alpha(c) && !is_digit(c)) continue;
    w += up ? static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c) : (w.empty() ? lower(c) : c);
    up = false;
  }
  if (w.empty() || is_digit(w[0])) return "id";
  static constexpr std::pair<std::string_view, std::string_view> kIrregular[] = {
      {"people", "person"}, {"children", "child"}, {"men", "man"}, {"women", "woman"}, {"data", "datum"}};
  for (auto [plural, single] : kIrregular)
    if (w == plural) return std::string(single) + "Id";
  auto ends = [&](std::string_view suf) { return w.size() > suf.size() && std::string_view(w).ends_with(suf); };
  if (ends("ies")) w.replace(w.size() - 3, 3, "y");
  else if (ends("sses") || ends("xes") || ends("ches") || ends("shes")) w.resize(w.size() - 2);
  else if (ends("s") && !ends("ss") && !ends("us") && !ends("is")) w.pop_back();
  return w + "Id";
}

std::string_view type_name(uint8_t mask) {
  if (mask == kTypeInteger) return "integer";
  if (mask == kTypeUuid) return "uuid";
  if (mask == kTypeDate) return "date";
  return "string";
}

PathPattern PathPattern::parse(std::string_view pattern) {
  PathPattern p;
  p.text_ = std::string(pattern);
  std::vector<std::string_view> segs;
  split_path(pattern, segs);
  for (auto s : segs) {
    Seg seg;
    size_t open = s.find('{'), close = s.find('}');
    if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
      seg.param = true;
      seg.literal = std::string(s.substr(0, open));
      seg.name = std::string(s.substr(open + 1, close - open - 1));
      seg.suffix = std::string(s.substr(close + 1));
    } else {
      seg.literal = std::string(s);
      ++p.literals_;
    }
    p.segs_.push_back(std::move(seg));
  }
  return p;
}

bool PathPattern::match(std::string_view path, std::vector<TemplateParam>* params) const {
  thread_local std::vector<std::string_view> segs;
  split_path(path, segs);
  if (segs.size() != segs_.size()) return false;
  for (size_t i = 0; i < segs.size(); ++i) {
    const Seg& p = segs_[i];
    if (!p.param) {
      if (segs[i] != p.literal) return false;
      continue;
    }
    std::string_view v = segs[i];
    if (v.size() <= p.literal.size() + p.suffix.size() || !v.starts_with(p.literal) || !v.ends_with(p.suffix))
      return false;
  }
  if (params) {
    params->clear();
    for (size_t i = 0; i < segs.size(); ++i) {
      const Seg& p = segs_[i];
      if (!p.param) continue;
      std::string_view v = segs[i].substr(p.literal.size(), segs[i].size() - p.literal.size() - p.suffix.size());
      ParamType t = classify_segment(v);
      TemplateParam tp{p.name, static_cast<uint8_t>(t == kTypeNone ? kTypeString : t), -1};
      if (t == kTypeInteger) tp.int_value = std::stoll(std::string(v));
      params->push_back(std::move(tp));
    }
  }
  return true;
}

Templater::Templater(TemplaterOptions o) : o_(o) {}
Templater::~Templater() = default;
Templater::Templater(Templater&&) noexcept = default;
Templater& Templater::operator=(Templater&&) noexcept = default;

void Templater::add_pattern(std::string_view pattern, bool declared) {
  forget();
  (declared ? declared_ : hints_).push_back(PathPattern::parse(pattern));
}

Templater::Node& Templater::root(std::string_view scope) {
  auto it = roots_.find(scope);
  if (it == roots_.end()) {
    if (roots_.size() >= o_.max_scopes) forget_scopes(o_.max_scopes * 7 / 8, o_.max_nodes, nullptr);
    it = roots_.emplace(std::string(scope), std::make_unique<Node>()).first;
    ++nodes_;
  }
  it->second->last_use = ++clock_;
  return *it->second;
}

namespace {

size_t subtree_size(const Templater::Node& n);

}  // namespace

void Templater::make_room(std::string_view scope) {
  if (nodes_ < o_.max_nodes) return;
  auto it = roots_.find(scope);
  forget_scopes(o_.max_scopes, o_.max_nodes * 3 / 4, it == roots_.end() ? nullptr : it->second.get());
}

void Templater::forget_scopes(size_t max_scopes, size_t max_nodes, const Node* keep) {
  if (roots_.size() <= max_scopes && nodes_ <= max_nodes) return;
  // The oldest first, in one pass over the roots (amortised: callers ask for room
  // to spare, so this runs once per many new scopes).
  std::vector<std::pair<uint64_t, std::string>> order;
  order.reserve(roots_.size());
  for (const auto& [scope, r] : roots_)
    if (r.get() != keep) order.emplace_back(r->last_use, scope);
  std::sort(order.begin(), order.end());
  for (const auto& [_, scope] : order) {
    if (roots_.size() <= max_scopes && nodes_ <= max_nodes) break;
    auto it = roots_.find(scope);
    nodes_ -= std::min(nodes_, subtree_size(*it->second));
    roots_.erase(it);
    ++scopes_forgotten_;
  }
  forget();  // the memo points into the tries
}

namespace {

size_t subtree_size(const Templater::Node& n) {
  size_t k = 1;
  for (const auto* kids : {&n.literals, &n.params})
    for (const auto& [_, c] : *kids) k += subtree_size(*c);
  return k;
}

// Folds `from` into `into` (a collapse merges the subtrees of the words it replaces).
void merge_node(Templater::Node& into, Templater::Node& from, size_t& nodes) {
  into.count += from.count;
  into.collapsed = into.collapsed || from.collapsed;
  for (auto* kids : {&from.literals, &from.params}) {
    auto& dest = kids == &from.literals ? into.literals : into.params;
    for (auto kid = kids->begin(); kid != kids->end(); ++kid) {
      auto it = dest.find(kid->first);
      if (it == dest.end()) {
        dest.emplace(kid->first, std::move(kid.value()));
      } else {
        merge_node(*it->second, *kid->second, nodes);
        --nodes;
      }
    }
  }
  into.once = 0;
  for (auto& [k, c] : into.literals)
    if (c->count == 1) ++into.once;
}

void add_unique_name(std::vector<TemplateParam>& params, std::string& name) {
  std::string base = name;
  for (int k = 2; std::any_of(params.begin(), params.end(), [&](auto& p) { return p.name == name; }); ++k)
    name = base + std::to_string(k);
}

// A collapse: the node's words (keywords aside) become one parameter per extension,
// their subtrees merged, named after `parent` (the segment above, "" when a param).
void collapse_literals(Templater::Node& node, std::string_view parent, size_t& nodes) {
  node.collapsed = true;
  for (auto it = node.literals.begin(); it != node.literals.end();) {
    if (keyword(it->first)) {
      ++it;
      continue;
    }
    std::string_view e = split_extension(it->first).second;
    auto& slot = node.params[std::string(e)];
    if (!slot) {
      slot = std::move(it.value());
      slot->param_name = param_name_for(parent);
    } else {
      merge_node(*slot, *it->second, nodes);
      --nodes;
    }
    it = node.literals.erase(it);
  }
  node.once = 0;
  for (auto& [k, c] : node.literals)
    if (c->count == 1) ++node.once;
}

// Sibling structure: three or more words under one node, none a keyword, each leading
// to the same few words (not keywords) that lead on again, are values of one
// parameter: /orgs/{acme,globex,initech}/repos/<more> -> /orgs/{orgId}/repos/...
bool same_structure(const Templater::Node& p) {
  if (p.collapsed || !p.params.empty() || p.literals.size() < 3) return false;
  const StringMap<std::unique_ptr<Templater::Node>>* first = nullptr;
  for (const auto& [k, c] : p.literals) {
    if (keyword(k) || !c->params.empty() || c->literals.empty() || c->literals.size() > 4) return false;
    if (!first) {
      first = &c->literals;
    } else if (c->literals.size() != first->size()) {
      return false;
    }
    for (const auto& [k2, g] : c->literals)
      if (keyword(k2) || first->find(k2) == first->end() || (g->literals.empty() && g->params.empty())) return false;
  }
  return true;
}

}  // namespace

Templated Templater::apply(std::string_view scope, std::string_view path, bool learn) {
  Templated out;
  apply(scope, path, learn, out);
  return out;
}

// A path seen before under the same scope is templated the same way again, unless
// the trie changed shape (a collapse, a restore: the memo is forgotten then) or a
// parent on its way could collapse now (more than collapse_min_children words:
// the walk judges it). A hit replays the walk's visit counts and nothing else, so
// the cardinality rule sees every call (bench/inventory_bench.cc: a repeated
// path costs a tenth of a walk).
void Templater::apply(std::string_view scope, std::string_view path, bool learn, Templated& out) {
  const Templated& r = resolve(scope, path, learn, out);
  if (&r != &out) out = r;
}

const Templated& Templater::resolve(std::string_view scope, std::string_view path, bool learn, Templated& out) {
  if (!learn || !o_.memo) {
    if (learn) {
      learn_walk(scope, path, out, nullptr);
      make_room(scope);
    } else {
      walk(scope, path, false, out, nullptr);
    }
    return out;
  }
  if (memo_.empty()) memo_.resize(kMemoSlots);
  memo_key_.assign(scope);
  memo_key_ += '\x1d';
  memo_key_.append(path);
  Memo& m = memo_[StringViewHash{}(memo_key_) & (kMemoSlots - 1)];
  if (m.key == memo_key_ && replay(m)) return m.out;
  m.chain.clear();
  learn_walk(scope, path, out, &m.chain);
  make_room(scope);
  if (out.collapsed) {
    forget();
    return out;
  }
  m.key = memo_key_;
  m.out.path = out.path;
  m.out.params = out.params;
  return out;
}

bool Templater::replay(const Memo& m) {
  // chain[0] is the root; chain[k] the node of segment k-1, reached as a literal or a param.
  for (size_t k = 2; k < m.chain.size(); ++k) {
    if (!m.chain[k].second) continue;
    const Node& parent = *m.chain[k - 1].first;
    if (!parent.collapsed &&
        (parent.literals.size() > o_.collapse_min_children || parent.literals.size() >= o_.max_literal_children))
      return false;
  }
  if (!m.chain.empty()) {
    ++m.chain[0].first->count;
    m.chain[0].first->last_use = ++clock_;
  }
  for (size_t k = 1; k < m.chain.size(); ++k) {
    Node* n = m.chain[k].first;
    if (++n->count == 2 && m.chain[k].second) --m.chain[k - 1].first->once;
  }
  return true;
}

void Templater::learn_walk(std::string_view scope, std::string_view path, Templated& out,
                           std::vector<std::pair<Node*, bool>>* chain) {
  size_t before = nodes_;
  walk(scope, path, true, out, chain);
  // Only a walk that grew the trie can give siblings a shape they did not have.
  if (nodes_ > before && collapse_by_siblings(scope, path)) {
    walk(scope, path, false, out, nullptr);
    out.collapsed = true;
  }
}

bool Templater::collapse_by_siblings(std::string_view scope, std::string_view path) {
  bool any = false;
  std::vector<std::pair<Node*, bool>> chain;
  std::vector<std::string_view> segs;
  Templated scratch;
  split_path(path, segs);
  for (size_t round = 0; round < segs.size(); ++round) {  // each collapse can reveal the next one down
    chain.clear();
    walk(scope, path, false, scratch, &chain);
    bool did = false;
    // chain[0] is the root (its words are routes); chain[j] the node of segment j - 1.
    for (size_t j = 1; j + 2 < chain.size() && !did; ++j) {
      if (!chain[j + 1].second || !chain[j + 2].second || !same_structure(*chain[j].first)) continue;
      collapse_literals(*chain[j].first, chain[j].second ? segs[j - 1] : std::string_view(), nodes_);
      did = any = true;
    }
    if (!did) break;
  }
  return any;
}

void Templater::forget() {
  for (auto& m : memo_) m.key.clear();
}

void Templater::walk(std::string_view scope, std::string_view path, bool learn, Templated& out,
                     std::vector<std::pair<Node*, bool>>* chain) {
  out.path.clear();
  out.params.clear();
  out.collapsed = false;
  // Forced templates: the declared spec's paths win, then hints; the most literal match first.
  for (const auto* set : {&declared_, &hints_}) {
    const PathPattern* best = nullptr;
    for (const auto& p : *set)
      if (p.match(path, nullptr) && (!best || p.literal_segments() > best->literal_segments())) best = &p;
    if (best) {
      best->match(path, &out.params);
      out.path = best->text();
      return;
    }
  }
  thread_local std::vector<std::string_view> segs;
  split_path(path, segs);
  Node* node = learn ? &root(scope) : nullptr;
  if (!learn) {
    auto it = roots_.find(scope);
    if (it != roots_.end()) node = it->second.get();
  }
  if (node && learn) ++node->count;
  if (chain && node) chain->emplace_back(node, false);
  std::string_view parent;  // the previous literal segment
  bool parent_literal = false;
  out.path.reserve(path.size() + 8);
  // Full tries stop growing; deep paths are learnt to max_depth (F12).
  auto grow = [&] { return learn && nodes_ < o_.max_nodes; };
  for (size_t i = 0; i < segs.size(); ++i) {
    if (i >= o_.max_depth) node = nullptr;
    std::string_view seg = segs[i];
    auto [stem, ext] = split_extension(seg);
    ParamType type = kTypeNone;
    // The first segment is a route ("/users", "/health"), unless it is a number or a UUID.
    if ((i > 0 || classify_segment(seg) & (kTypeInteger | kTypeUuid)) && !never_param(seg)) {
      type = ext.empty() ? kTypeNone : classify_segment(stem);  // "{fileId}.pdf"
      if (type == kTypeNone) {
        ext = {};
        stem = seg;
        type = classify_segment(seg);  // "alice@example.com" is one value
      }
      if (type == kTypeNone && node && node->collapsed && !keyword(seg)) {
        std::tie(stem, ext) = split_extension(seg);
        type = kTypeString;
      }
    }
    out.path += '/';
    if (type == kTypeNone) {
      Node* child = nullptr;
      if (node) {
        auto it = node->literals.find(seg);
        if (it != node->literals.end()) {
          child = it->second.get();
          if (learn && ++child->count == 2) --node->once;
        } else if (grow() && node->literals.size() < o_.max_literal_children) {
          auto c = std::make_unique<Node>();
          c->count = 1;
          ++node->once;
          ++nodes_;
          child = c.get();
          node->literals.emplace(std::string(seg), std::move(c));
        }
        // The cardinality rule: many distinct words, most seen once -> they are values.
        // Slugs ("how-to-write-an-api") are values once two stand side by side with no
        // other word beside them.
        size_t words = node->literals.size();
        if (learn && i > 0 && !node->collapsed &&
            ((words > o_.collapse_min_children && node->count >= o_.collapse_min_visits &&
              node->once > words * o_.collapse_once_ratio) ||
             words >= o_.max_literal_children || (is_slug(seg) && only_slugs(*node))) &&
            !keyword(seg)) {
          out.collapsed = true;
          collapse_literals(*node, parent_literal ? parent : std::string_view(), nodes_);
          out.path.pop_back();
          --i;  // judge this segment again, now under a collapsed parent
          continue;
        }
      }
      out.path.append(seg);
      node = child;
      if (chain && node) chain->emplace_back(node, true);
      parent = seg;
      parent_literal = true;
      continue;
    }
    // A parameter.
    std::string name;
    Node* child = nullptr;
    if (node) {
      auto it = node->params.find(ext);
      if (it != node->params.end()) {
        child = it->second.get();
      } else if (grow()) {
        auto c = std::make_unique<Node>();
        c->param_name = param_name_for(parent_literal ? parent : std::string_view());
        add_unique_name(out.params, c->param_name);
        ++nodes_;
        child = c.get();
        node->params.emplace(std::string(ext), std::move(c));
      }
    }
    if (child) {
      if (learn) ++child->count;
      name = child->param_name;
    } else {
      name = param_name_for(parent_literal ? parent : std::string_view());
    }
    add_unique_name(out.params, name);
    out.path += '{';
    out.path += name;
    out.path += '}';
    out.path.append(ext);
    TemplateParam p{name, static_cast<uint8_t>(type), -1};
    if (type == kTypeInteger) {
      int64_t v = 0;
      for (char c : stem.empty() ? seg : stem) v = v * 10 + (c - '0');
      p.int_value = v;
    }
    out.params.push_back(std::move(p));
    node = child;
    if (chain && node) chain->emplace_back(node, false);
    parent = seg;
    parent_literal = false;
  }
  if (segs.empty()) out.path = "/";
}

std::string Templater::retemplate(std::string_view scope, std::string_view tmpl) {
  for (const auto* set : {&declared_, &hints_})
    for (const auto& p : *set)
      if (p.text() == tmpl) return std::string(tmpl);
  thread_local std::vector<std::string_view> segs;
  split_path(tmpl, segs);
  auto it = roots_.find(scope);
  Node* node = it == roots_.end() ? nullptr : it->second.get();
  std::string out;
  std::vector<TemplateParam> names;
  for (size_t i = 0; i < segs.size(); ++i) {
    std::string_view seg = segs[i];
    out += '/';
    bool param = is_param_segment(seg);
    std::string_view ext = param ? param_parts(seg).second : split_extension(seg).second;
    if (!param && node && node->collapsed && i > 0 && !keyword(seg) && !never_param(seg)) param = true;
    if (!param) {
      out.append(seg);
      Node* next = nullptr;
      if (node)
        if (auto c = node->literals.find(seg); c != node->literals.end()) next = c->second.get();
      node = next;
      continue;
    }
    Node* next = nullptr;
    if (node)
      if (auto c = node->params.find(ext); c != node->params.end()) next = c->second.get();
    std::string name = next ? next->param_name
                            : (is_param_segment(seg) ? std::string(param_parts(seg).first) : std::string("id"));
    add_unique_name(names, name);
    names.push_back({name, kTypeString, -1});
    out += '{';
    out += name;
    out += '}';
    out.append(ext);
    node = next;
  }
  return out;
}

void Templater::restore(std::string_view scope, std::string_view tmpl) {
  forget();
  thread_local std::vector<std::string_view> segs;
  split_path(tmpl, segs);
  Node* node = &root(scope);
  node->count += 2;
  for (std::string_view seg : segs) {
    bool param = is_param_segment(seg);
    auto& kids = param ? node->params : node->literals;
    std::string key(param ? param_parts(seg).second : seg);
    auto& slot = kids[key];
    if (!slot) {
      slot = std::make_unique<Node>();
      ++nodes_;
      if (param) slot->param_name = std::string(param_parts(seg).first);
    }
    slot->count += 2;  // restored endpoints were real: never "seen once"
    node = slot.get();
  }
}

std::vector<std::string> Templater::collapsed_nodes() const {
  std::vector<std::string> out;
  std::function<void(const Node&, const std::string&)> walk = [&](const Node& n, const std::string& prefix) {
    if (n.collapsed) out.push_back(prefix);
    for (const auto& [k, c] : n.literals) walk(*c, prefix + "/" + k);
    for (const auto& [k, c] : n.params) walk(*c, prefix + "/{" + c->param_name + "}" + k);
  };
  for (const auto& [scope, r] : roots_) walk(*r, scope + '\x1e');
  return out;
}

void Templater::restore_collapsed(std::string_view entry) {
  forget();
  size_t sep = entry.rfind('\x1e');
  if (sep == std::string_view::npos) return;
  Node* node = &root(entry.substr(0, sep));
  std::string_view path = entry.substr(sep + 1);
  if (!path.empty()) {
    thread_local std::vector<std::string_view> segs;
    split_path(path, segs);
    for (std::string_view seg : segs) {
      bool param = is_param_segment(seg);
      auto& kids = param ? node->params : node->literals;
      auto& slot = kids[std::string(param ? param_parts(seg).second : seg)];
      if (!slot) {
        slot = std::make_unique<Node>();
        slot->count = 2;
        ++nodes_;
        if (param) slot->param_name = std::string(param_parts(seg).first);
      }
      node = slot.get();
    }
  }
  node->collapsed = true;
}

}  // namespace vigil::apimap
