// The API inventory (DESIGN.md §3 apimap): every endpoint each service serves and
// calls, fed by every paired exchange (shipped as an event or not). Per endpoint:
// counts, statuses, a latency sketch, content types, auth schemes, sensitive data
// classes, body schemas, examples, a risk score; findings with OWASP API Top 10
// ids. Noise (404-only paths, scanners) is held back; memory is bounded by
// max_endpoints. One thread (the agent loop) calls it.
#pragma once

#include <cstdint>
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/apimap/schema.h"
#include "agent/apimap/sensitive.h"
#include "agent/apimap/sketch.h"
#include "agent/apimap/spec.h"
#include "agent/apimap/template.h"
#include "agent/events/capture.h"
#include "agent/events/events.h"
#include "collectors/protocols/common/message.h"

namespace vigil::apimap {

inline constexpr int kInventoryFormat = 1;  // "vigil_inventory" of exported documents

// One paired exchange, as the event mapper has it (raw headers: nothing redacted yet).
struct CallInput {
  const protocols::Exchange* exchange = nullptr;
  const ProcessRef* process = nullptr;
  std::string_view role;  // server | client
  std::string_view protocol;
  std::string_view method, host, path, query;
  int status = 0;
  uint64_t latency_ns = 0;
  bool tls = false;
  std::string_view remote_addr, local_addr;
  uint16_t remote_port = 0;
  uint64_t wall_ns = 0;
  // How much of the call to look at (null: all of it): the scope's endpoint rules
  // are tried on the template, the endpoint's call count picks the samples.
  const CapturePolicy* capture = nullptr;
  CaptureScope scope{};
};

struct CallResult {
  std::string endpoint;        // the path template
  uint16_t sensitive = 0;      // SensitiveClass bits of this call
  bool first = false;          // the endpoint's first call (as this inventory knows it)
  bool finding = false;        // this call raised a finding not raised before
  CaptureLevel level = CaptureLevel::kFull;  // how much of it was looked at
};

// "nginx.service", a container id, or the executable's basename.
std::string service_name(const ProcessRef& p);

enum FindingKind : int {
  kFindUnauthSensitive,
  kFindPlaintextCredentials,
  kFindSecretInUrl,
  kFindJwtAlgNone,
  kFindJwtNoExp,
  kFindJwtLongLifetime,
  kFindBasicAuth,
  kFindShadow,
  kFindZombie,
  kFindSequentialIds,
  kFindingKinds
};
struct FindingInfo {
  std::string_view id, severity, owasp, title, advice;
};
const FindingInfo& finding_info(int kind);

struct Endpoint {
  std::string service, role, host, method, path, protocol;
  uint64_t count = 0, tls_count = 0;
  std::vector<std::pair<uint16_t, uint64_t>> status;
  Sketch latency;  // ns
  std::vector<std::string> req_types, resp_types;  // content types (<= 4 each)
  uint16_t auth = 0;             // AuthScheme bits
  uint16_t plaintext_auth = 0;   // schemes seen on plaintext calls
  uint16_t sensitive = 0;        // SensitiveClass bits, requests and responses
  uint16_t resp_sensitive = 0;   // of responses alone
  std::vector<uint64_t> sensitive_counts;  // calls per class (kSensitiveClassCount)
  std::string key_name, cookie_name;
  std::vector<std::string> jwt_algs, jwt_issuers;
  bool jwt_no_exp = false;
  int64_t jwt_max_lifetime_s = 0;
  uint64_t first_seen = 0, last_seen = 0;  // wall ns
  std::vector<std::string> examples;       // redacted concrete paths (<= 3)
  std::vector<std::pair<std::string, uint8_t>> params;  // name, ParamType bits seen
  std::vector<int64_t> int_ids;  // distinct integer ids (<= 16), sequential-id detection
  Schema req_schema, resp_schema;
  std::vector<std::pair<std::string, uint16_t>> remotes;  // client role: addresses called (<= 4)
  std::string exe;
  std::vector<std::string> url_secrets;  // query parameter names / classes seen in URLs
  bool declared = false, deprecated = false;
  uint16_t raised = 0;  // FindingKind bits already reported
  bool active = false;  // pending until a non-404 answer to a non-scanner client
  std::vector<std::string> candidates;  // pending: clients that got a real answer
  uint64_t schema_tries = 0;
  bool dirty = false;                              // queued for the store
  std::array<struct Finding*, kFindingKinds> finding_refs{};  // raised findings, for counting

  std::string key() const;
  bool redirect_only() const;
  nlohmann::json to_json() const;  // the inventory document's endpoint entry (state included)
  static std::optional<Endpoint> from_json(const nlohmann::json& j);
  void merge(const Endpoint& o);
  size_t memory_bytes() const;
};

struct Risk {
  int score = 0;
  std::vector<std::string> reasons;
};
Risk risk_of(const Endpoint& e);

struct Finding {
  int kind = 0;
  bool dirty = false;
  std::string service, method, host, path, evidence;
  uint64_t first_seen = 0, count = 0;
  nlohmann::json to_json() const;
  static std::optional<Finding> from_json(const nlohmann::json& j);
  std::string key() const;
};

struct ServiceStats {
  std::string exe;
  uint64_t unmatched_404 = 0;
  nlohmann::json to_json(const std::string& name) const;
};

struct InventoryOptions {
  std::string node;
  size_t max_endpoints = 10000;
  std::vector<std::string> path_hints;
  std::vector<DeclaredOperation> declared;
  size_t schema_samples = 16;  // bodies parsed per endpoint before sampling 1 in schema_every
  size_t schema_every = 64;
};

class Inventory {
 public:
  using Emit = std::function<void(Event&&)>;
  Inventory(InventoryOptions o, std::unique_ptr<SensitiveScanner> scanner);

  CallResult observe(const CallInput& in, const Emit& emit);
  // Promotes pending endpoints whose clients are not scanners; evicts beyond the bound.
  void tick(uint64_t wall_ns, const Emit& emit);

  // The whole inventory as a document (DESIGN.md §7 `map export -o json`).
  nlohmann::json to_json(std::string_view service = {}) const;
  // Restores a stored state: endpoints known before are not "discovered" again.
  void restore(const std::vector<Endpoint>& endpoints, const std::vector<Finding>& findings,
               const std::unordered_map<std::string, ServiceStats>& services,
               const std::vector<std::string>& collapsed);

  // What changed since the last call (for the store), and what was evicted.
  struct Changes {
    std::vector<const Endpoint*> endpoints;
    std::vector<std::string> removed;
    std::vector<const Finding*> findings;
    std::vector<std::pair<std::string, const ServiceStats*>> services;
    std::vector<std::string> collapsed;
  };
  Changes take_changes();
  // A batch the store could not write: marked changed again, to go with the next.
  void requeue(const Changes& changes);

  size_t endpoints() const { return active_; }
  size_t pending() const { return map_.size() - active_; }
  uint64_t evicted() const { return evicted_; }
  uint64_t calls() const { return calls_; }
  size_t findings() const { return findings_.size(); }
  size_t memory_bytes() const;

 private:
  // The endpoint of this call (created pending); its params are in templated_.
  Endpoint& endpoint_for(const CallInput& in, const std::string& service, bool learn);
  void retemplate_scope(const std::string& scope);
  void promote(Endpoint& e, const Emit& emit);
  void check_findings(Endpoint& e, const CallInput& in, uint16_t call_auth, uint16_t resp_sensitive,
                      const std::string& evidence_auth, bool url_secret, const Emit& emit);
  void raise(Endpoint& e, int kind, std::string evidence, uint64_t wall_ns, const Emit& emit);
  void evict();
  bool scanner(const std::string& client) const;
  const std::string& service_of(const ProcessRef& p);

  InventoryOptions o_;
  std::unique_ptr<SensitiveScanner> scanner_;
  Templater templater_;
  StringMap<std::unique_ptr<Endpoint>> map_;
  std::unordered_map<std::string, std::vector<Endpoint*>> by_scope_;
  std::unordered_map<std::string, Finding> findings_;
  std::unordered_map<std::string, ServiceStats> services_;
  struct ClientStats {
    uint64_t calls = 0, not_found = 0;
    // Mostly 404/405 answers over enough calls.
    bool scanner() const { return calls >= 10 && not_found * 2 > calls; }
  };
  StringMap<ClientStats> clients_;
  std::unordered_map<uint32_t, std::pair<std::string, std::string>> service_cache_;  // pid -> exe, service
  void mark_dirty(Endpoint& e);
  std::unordered_set<std::string> dirty_, dirty_findings_;
  std::vector<std::string> removed_;
  bool collapsed_dirty_ = false;
  size_t active_ = 0;
  uint64_t evicted_ = 0, calls_ = 0;
  uint64_t new_findings_ = 0;  // findings raised for the first time (CallResult::finding)
  std::string key_buf_, scan_buf_, client_buf_;
  static constexpr size_t kScanCacheMaxBytes = 256;
  struct ScanCacheSlot {
    std::string text;
    std::array<size_t, 2> cuts{};
    std::array<uint16_t, 3> found{};
  };
  std::array<ScanCacheSlot, 512> scan_cache_;
  void scan_cached(const std::array<size_t, 2>& cuts, std::array<uint16_t, 3>& found);
  Templated templated_;
  const Templated* resolved_ = &templated_;  // this call's template (the templater's memo or templated_)
};

// Merges exported inventory documents (counts add, sketches merge exactly).
Result<nlohmann::json> merge_inventories(const std::vector<nlohmann::json>& docs);
// Reads the endpoints of an inventory document (an export or `map list -o json`).
Result<std::vector<Endpoint>> endpoints_of(const nlohmann::json& doc);

}  // namespace vigil::apimap
