// What `vigil top` shows: api_call events of one interval, aggregated per process
// and per endpoint (role, method, host, endpoint template): request rate, 4xx and
// 5xx counts, p50 and p95 latency.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

namespace vigil::cli {

class TopTable {
 public:
  // Counts an api_call event (others are ignored).
  void add(const nlohmann::json& e);
  // The interval as tables (at most `rows` lines each, busiest first), `seconds` long.
  std::string render(double seconds, size_t rows) const;
  // The same as JSON: {"seconds", "processes": [...], "endpoints": [...]}.
  nlohmann::json to_json(double seconds, size_t rows) const;
  void clear();
  uint64_t calls() const { return calls_; }

 private:
  struct Row {
    uint64_t requests = 0, client_errors = 0, server_errors = 0;
    std::vector<uint64_t> latencies_ns;  // at most kSamples per interval (then every call still counts)
    uint64_t seen = 0;                   // calls offered to the sample (reservoir)
    void add(uint16_t status, uint64_t latency_ns);
    std::pair<uint64_t, uint64_t> p50_p95() const;  // from one copy of the sample
  };
  static constexpr size_t kSamples = 4096;
  using ProcessKey = std::tuple<uint32_t, std::string>;                          // pid, comm
  using EndpointKey = std::tuple<std::string, std::string, std::string, std::string>;  // role, method, host, endpoint
  template <typename Map>
  static std::vector<typename Map::const_iterator> busiest(const Map& m, size_t rows);

  std::map<ProcessKey, Row> processes_;
  std::map<EndpointKey, Row> endpoints_;
  uint64_t calls_ = 0;
};

}  // namespace vigil::cli
