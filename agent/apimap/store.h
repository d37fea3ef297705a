// The inventory's SQLite store in data_dir (WAL mode, schema versioned by
// user_version): changed endpoints, findings and service counters are written in
// one transaction per batch, off the per-call path. A SIGKILL loses at most the
// batch not yet written.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/apimap/inventory.h"
#include "base/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace vigil::apimap {

inline constexpr int kStoreSchemaVersion = 1;

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  struct Loaded {
    std::vector<Endpoint> endpoints;
    std::vector<Finding> findings;
    std::unordered_map<std::string, ServiceStats> services;
    std::vector<std::string> collapsed;
    size_t skipped = 0;  // rows that did not parse (reported, not fatal)
  };
  Result<Loaded> load();
  // Writes one batch; nothing of it is applied when any part fails.
  Result<size_t> save(const Inventory::Changes& changes);
  const std::string& path() const { return path_; }

 private:
  Store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status exec(const char* sql);
  Status prepare();

  sqlite3* db_;
  std::string path_;
  sqlite3_stmt *put_endpoint_ = nullptr, *del_endpoint_ = nullptr, *put_finding_ = nullptr,
               *put_service_ = nullptr, *put_meta_ = nullptr;
};

}  // namespace vigil::apimap
