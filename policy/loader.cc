#include "policy/loader.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "base/suggest.h"
#include "base/yaml_guard.h"

namespace vigil::policy {
namespace {

// Collects every error of a file; parsing goes on past a bad node so that one
// run names all the problems.
class Checker {
 public:
  explicit Checker(std::string_view source) : source_(source) {}

  void error(const YAML::Mark& m, const std::string& what) {
    if (m.is_null()) errors_.push_back(fmt::format("{}: {}", source_, what));
    else errors_.push_back(fmt::format("{}:{}:{}: {}", source_, m.line + 1, m.column + 1, what));
  }
  bool ok() const { return errors_.empty(); }
  const std::vector<std::string>& errors() const { return errors_; }
  const std::string& source() const { return source_; }

  // A mapping whose keys are all allowed; false (with errors) otherwise.
  bool map(const YAML::Node& n, const std::string& path, std::initializer_list<std::string_view> allowed) {
    if (!n.IsMap()) {
      error(n.Mark(), fmt::format("'{}' must be a mapping", path));
      return false;
    }
    bool good = true;
    for (const auto& kv : n) {
      std::string key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        error(kv.first.Mark(), fmt::format("unknown key '{}.{}'{}", path, key, suggest_key(key, allowed)));
        good = false;
      }
    }
    return good;
  }

  bool list(const YAML::Node& n, const std::string& path) {
    if (n.IsSequence()) return true;
    error(n.Mark(), fmt::format("'{}' must be a list", path));
    return false;
  }

  std::optional<std::string> string(const YAML::Node& n, const std::string& path) {
    if (n.IsScalar()) return n.Scalar();
    error(n.Mark(), fmt::format("'{}' must be a string", path));
    return std::nullopt;
  }

  std::optional<uint64_t> integer(const YAML::Node& n, const std::string& path, uint64_t min, uint64_t max) {
    const std::string s = n.IsScalar() ? n.Scalar() : std::string();
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < min || v > max) {
      error(n.Mark(), fmt::format("'{}' must be an integer from {} to {}, got '{}'", path, min, max, s));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const YAML::Node& n, const std::string& path) {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) return n.Scalar() == "true";
    error(n.Mark(), fmt::format("'{}' must be true or false", path));
    return std::nullopt;
  }

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

std::optional<PortRange> parse_port(Checker& c, const YAML::Node& n, const std::string& path) {
  if (!c.map(n, path, {"port", "endPort", "protocol"})) return std::nullopt;
  PortRange r;
  if (!n["port"]) {
    c.error(n.Mark(), fmt::format("'{}.port' is required", path));
    return std::nullopt;
  }
  auto first = c.integer(n["port"], path + ".port", 1, 65535);
  if (!first) return std::nullopt;
  r.first = r.last = static_cast<uint16_t>(*first);
  if (n["endPort"]) {
    auto last = c.integer(n["endPort"], path + ".endPort", 1, 65535);
    if (!last) return std::nullopt;
    if (*last < *first) {
      c.error(n["endPort"].Mark(), fmt::format("'{}.endPort' ({}) is below port ({})", path, *last, *first));
      return std::nullopt;
    }
    r.last = static_cast<uint16_t>(*last);
  }
  if (n["protocol"]) {
    auto p = c.string(n["protocol"], path + ".protocol");
    if (!p) return std::nullopt;
    std::string l = *p;
    std::transform(l.begin(), l.end(), l.begin(), ::tolower);
    if (l == "tcp") r.proto = Proto::kTcp;
    else if (l == "udp") r.proto = Proto::kUdp;
    else if (l == "any") r.proto = Proto::kAny;
    else {
      c.error(n["protocol"].Mark(), fmt::format("'{}.protocol' is '{}'; expected tcp, udp or any", path, *p));
      return std::nullopt;
    }
  }
  return r;
}

std::optional<Peer> parse_peer(Checker& c, const YAML::Node& n, const std::string& path) {
  if (!c.map(n, path, {"cidr", "except", "fqdn"})) return std::nullopt;
  Peer peer;
  bool has_cidr = static_cast<bool>(n["cidr"]), has_fqdn = static_cast<bool>(n["fqdn"]);
  if (has_cidr == has_fqdn) {
    c.error(n.Mark(), fmt::format("'{}' needs exactly one of cidr or fqdn", path));
    return std::nullopt;
  }
  if (has_fqdn) {
    if (n["except"]) {
      c.error(n["except"].Mark(), fmt::format("'{}.except' applies to a cidr, not an fqdn", path));
      return std::nullopt;
    }
    auto s = c.string(n["fqdn"], path + ".fqdn");
    if (!s) return std::nullopt;
    auto f = parse_fqdn(*s);
    if (!f) {
      c.error(n["fqdn"].Mark(), fmt::format("'{}.fqdn': {}", path, f.error().message));
      return std::nullopt;
    }
    peer.fqdn = std::move(*f);
    return peer;
  }
  auto s = c.string(n["cidr"], path + ".cidr");
  if (!s) return std::nullopt;
  auto cidr = parse_cidr(*s);
  if (!cidr) {
    c.error(n["cidr"].Mark(), fmt::format("'{}.cidr': {}", path, cidr.error().message));
    return std::nullopt;
  }
  peer.cidr = std::move(*cidr);
  if (n["except"]) {
    if (!c.list(n["except"], path + ".except")) return std::nullopt;
    for (size_t i = 0; i < n["except"].size(); ++i) {
      std::string ipath = fmt::format("{}.except[{}]", path, i);
      auto es = c.string(n["except"][i], ipath);
      if (!es) return std::nullopt;
      auto e = parse_cidr(*es);
      if (!e) {
        c.error(n["except"][i].Mark(), fmt::format("'{}': {}", ipath, e.error().message));
        return std::nullopt;
      }
      if (!peer.cidr->contains(*e) || e->prefix <= peer.cidr->prefix) {
        c.error(n["except"][i].Mark(),
                fmt::format("'{}' ({}) is not a narrower range inside {}", ipath, e->text, peer.cidr->text));
        return std::nullopt;
      }
      peer.except.push_back(std::move(*e));
    }
  }
  return peer;
}

std::optional<EgressPolicy> parse_document(Checker& c, const YAML::Node& doc, size_t index) {
  std::string where = fmt::format("document {}", index + 1);
  if (!c.map(doc, where, {"apiVersion", "kind", "metadata", "spec"})) return std::nullopt;
  EgressPolicy p;
  p.source = fmt::format("{}:{}", c.source(), doc.Mark().line + 1);
  for (const char* required : {"apiVersion", "kind", "metadata", "spec"}) {
    if (!doc[required]) {
      c.error(doc.Mark(), fmt::format("{}: '{}' is required", where, required));
      return std::nullopt;
    }
  }
  if (auto v = c.string(doc["apiVersion"], "apiVersion"); v && *v != "vigil/v1")
    c.error(doc["apiVersion"].Mark(), fmt::format("'apiVersion' is '{}'; expected vigil/v1", *v));
  if (auto k = c.string(doc["kind"], "kind"); k && *k != "EgressPolicy")
    c.error(doc["kind"].Mark(), fmt::format("'kind' is '{}'; expected EgressPolicy", *k));
  if (c.map(doc["metadata"], "metadata", {"name", "labels", "annotations"})) {
    if (!doc["metadata"]["name"]) {
      c.error(doc["metadata"].Mark(), "'metadata.name' is required");
    } else if (auto n = c.string(doc["metadata"]["name"], "metadata.name")) {
      bool valid = !n->empty() && n->size() <= 253 &&
                   std::all_of(n->begin(), n->end(), [](char ch) {
                     return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
                   });
      if (!valid)
        c.error(doc["metadata"]["name"].Mark(),
                fmt::format("'metadata.name' '{}' must be 1-253 characters of a-z, 0-9, '-' and '.'", *n));
      p.name = *n;
    }
  }
  const YAML::Node spec = doc["spec"];
  if (!c.map(spec, "spec", {"mode", "selector", "allowLoopback", "egress"})) return std::nullopt;
  if (spec["mode"]) {
    if (auto m = c.string(spec["mode"], "spec.mode")) {
      if (*m == "audit") p.mode = Mode::kAudit;
      else if (*m == "enforce") p.mode = Mode::kEnforce;
      else c.error(spec["mode"].Mark(), fmt::format("'spec.mode' is '{}'; expected audit or enforce", *m));
    }
  }
  if (spec["allowLoopback"])
    if (auto b = c.boolean(spec["allowLoopback"], "spec.allowLoopback")) p.allow_loopback = *b;
  if (!spec["selector"]) {
    c.error(spec.Mark(), "'spec.selector' is required (a policy must say which processes it restricts)");
  } else if (c.map(spec["selector"], "spec.selector", {"binaries", "cgroups", "uids", "pods"})) {
    const YAML::Node sel = spec["selector"];
    auto strings = [&](const char* key, std::vector<std::string>& out) {
      if (!sel[key] || !c.list(sel[key], fmt::format("spec.selector.{}", key))) return;
      for (size_t i = 0; i < sel[key].size(); ++i) {
        auto s = c.string(sel[key][i], fmt::format("spec.selector.{}[{}]", key, i));
        if (s && s->empty()) c.error(sel[key][i].Mark(), fmt::format("'spec.selector.{}[{}]' is empty", key, i));
        else if (s) out.push_back(*s);
      }
    };
    strings("binaries", p.selector.binaries);
    strings("cgroups", p.selector.cgroups);
    if (sel["uids"] && c.list(sel["uids"], "spec.selector.uids")) {
      for (size_t i = 0; i < sel["uids"].size(); ++i)
        if (auto u = c.integer(sel["uids"][i], fmt::format("spec.selector.uids[{}]", i), 0, 4294967294ull))
          p.selector.uids.push_back(static_cast<uint32_t>(*u));
    }
    if (const YAML::Node pods = sel["pods"]; pods) {
      // One selector as a map (DESIGN.md §6), or a list of them (any matches).
      std::vector<std::pair<YAML::Node, std::string>> items;
      if (pods.IsSequence()) {
        for (size_t i = 0; i < pods.size(); ++i) items.emplace_back(pods[i], fmt::format("spec.selector.pods[{}]", i));
        if (pods.size() == 0) c.error(pods.Mark(), "'spec.selector.pods' is an empty list");
      } else {
        items.emplace_back(pods, "spec.selector.pods");
      }
      for (const auto& [n, path] : items) {
        if (!c.map(n, path, {"namespace", "matchLabels"})) continue;
        PodSelector ps;
        if (n["namespace"])
          if (auto s = c.string(n["namespace"], path + ".namespace")) ps.ns = *s;
        if (const YAML::Node ml = n["matchLabels"]; ml) {
          if (!ml.IsMap()) {
            c.error(ml.Mark(), fmt::format("'{}.matchLabels' must be a map of label: value", path));
          } else {
            for (const auto& kv : ml) {
              auto k = c.string(kv.first, path + ".matchLabels");
              auto v = c.string(kv.second, fmt::format("{}.matchLabels.{}", path, k ? *k : "?"));
              if (k && v) ps.match_labels[*k] = *v;
            }
          }
        }
        if (ps.ns.empty() && ps.match_labels.empty())
          c.error(n.Mark(), fmt::format("'{}' is empty: give namespace, matchLabels or both", path));
        p.selector.pods.push_back(std::move(ps));
      }
      if (!p.selector.cgroups.empty() && !p.selector.pods.empty())
        c.error(pods.Mark(), "'spec.selector' gives both cgroups and pods; both name cgroups: give one");
    }
    if (p.selector.empty())
      c.error(sel.Mark(), "'spec.selector' is empty: give binaries, cgroups, uids or pods");
  }
  if (spec["egress"] && c.list(spec["egress"], "spec.egress")) {
    for (size_t i = 0; i < spec["egress"].size(); ++i) {
      const YAML::Node r = spec["egress"][i];
      std::string rpath = fmt::format("spec.egress[{}]", i);
      if (!c.map(r, rpath, {"to", "ports"})) continue;
      EgressRule rule;
      if (r["to"] && c.list(r["to"], rpath + ".to")) {
        for (size_t j = 0; j < r["to"].size(); ++j)
          if (auto peer = parse_peer(c, r["to"][j], fmt::format("{}.to[{}]", rpath, j)))
            rule.to.push_back(std::move(*peer));
      }
      if (r["ports"] && c.list(r["ports"], rpath + ".ports")) {
        for (size_t j = 0; j < r["ports"].size(); ++j)
          if (auto port = parse_port(c, r["ports"][j], fmt::format("{}.ports[{}]", rpath, j)))
            rule.ports.push_back(*port);
      }
      p.egress.push_back(std::move(rule));
    }
  }
  return p;
}

}  // namespace

bool Cidr::contains(const std::array<uint8_t, 16>& a) const {
  size_t full = prefix / 8, rest = prefix % 8;
  if (!std::equal(addr.begin(), addr.begin() + full, a.begin())) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (addr[full] & mask) == (a[full] & mask);
}

bool Cidr::contains(const Cidr& other) const { return other.prefix >= prefix && contains(other.addr); }

Result<Cidr> parse_cidr(std::string_view text) {
  Cidr c;
  c.text = std::string(text);
  std::string_view ip = text;
  std::optional<unsigned> len;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    ip = text.substr(0, slash);
    std::string_view l = text.substr(slash + 1);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), v);
    if (l.empty() || ec != std::errc() || p != l.data() + l.size())
      return Error{fmt::format("'{}' has a bad prefix length", text)};
    len = v;
  }
  std::string ips(ip);
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, ips.c_str(), &v4) == 1) {
    if (len && *len > 32) return Error{fmt::format("'{}': an IPv4 prefix is at most /32", text)};
    c.v4 = true;
    c.addr[10] = c.addr[11] = 0xff;
    std::memcpy(&c.addr[12], &v4, 4);
    c.prefix = static_cast<uint8_t>(96 + len.value_or(32));
  } else if (inet_pton(AF_INET6, ips.c_str(), &v6) == 1) {
    if (len && *len > 128) return Error{fmt::format("'{}': an IPv6 prefix is at most /128", text)};
    std::memcpy(c.addr.data(), &v6, 16);
    c.prefix = static_cast<uint8_t>(len.value_or(128));
  } else {
    return Error{fmt::format("'{}' is not an IPv4 or IPv6 address or CIDR", text)};
  }
  // Host bits set ("10.1.2.3/8") usually mean a typo: refuse rather than guess.
  Cidr masked = c;
  for (size_t bit = c.prefix; bit < 128; ++bit) masked.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  if (masked.addr != c.addr)
    return Error{fmt::format("'{}' has host bits set beyond /{}", text, c.v4 ? c.prefix - 96 : c.prefix)};
  return c;
}

Result<std::string> parse_fqdn(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  if (!s.empty() && s.back() == '.') s.pop_back();
  std::string_view body = s;
  if (body.substr(0, 2) == "*.") body.remove_prefix(2);
  if (body.empty() || body.size() > 253) return Error{fmt::format("'{}' is not a DNS name", text)};
  if (body.find('*') != std::string_view::npos)
    return Error{fmt::format("'{}': '*' is only allowed as the first label ('*.example.com')", text)};
  size_t start = 0;
  while (start <= body.size()) {
    size_t dot = body.find('.', start);
    if (dot == std::string_view::npos) dot = body.size();
    std::string_view label = body.substr(start, dot - start);
    bool ok = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
              std::all_of(label.begin(), label.end(), [](char ch) {
                return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
              });
    if (!ok) return Error{fmt::format("'{}' has an invalid label '{}'", text, label)};
    start = dot + 1;
  }
  return s;
}

Result<std::vector<EgressPolicy>> load_policies(std::string_view yaml, std::string_view source) {
  if (auto st = check_yaml(yaml, source); !st) return st.error();
  Checker c(source);
  std::vector<EgressPolicy> out;
  try {
    auto docs = YAML::LoadAll(std::string(yaml));
    for (size_t i = 0; i < docs.size(); ++i) {
      if (docs[i].IsNull()) continue;
      if (auto p = parse_document(c, docs[i], i)) out.push_back(std::move(*p));
    }
  } catch (const YAML::Exception& e) {
    c.error(e.mark, e.msg);
  }
  std::set<std::string> names;
  for (const auto& p : out)
    if (!p.name.empty() && !names.insert(p.name).second)
      c.error(YAML::Mark::null_mark(), fmt::format("policy name '{}' is used twice", p.name));
  if (!c.ok()) {
    std::string all;
    for (const auto& e : c.errors()) all += (all.empty() ? "" : "\n") + e;
    return Error{all};
  }
  return out;
}

Result<std::vector<EgressPolicy>> load_policy_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return os_error(fmt::format("read policy file {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return load_policies(ss.str(), path);
}

}  // namespace vigil::policy
