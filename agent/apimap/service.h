// The inventory inside vigild: loads declared specs, restores the SQLite store
// from data_dir, turns each api_call (with its raw exchange) into an inventory
// update, promotes and evicts once a second, and writes changed rows in one
// batch every few seconds (and at stop).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/apimap/inventory.h"
#include "agent/apimap/store.h"
#include "agent/events/events.h"
#include "base/result.h"
#include "collectors/protocols/common/message.h"

namespace vigil::apimap {

struct ServiceOptions {
  std::string node;
  std::string data_dir;  // empty: in memory only
  std::vector<std::string> path_hints, declared_specs;
  size_t max_endpoints = 10000;
  uint64_t save_interval_ns = 3'000'000'000ull;
};

class InventoryService {
 public:
  using Emit = std::function<void(Event&&)>;
  // Fails on a declared spec that does not load or a scanner that does not
  // compile; a store that cannot open is reported in status, not fatal.
  static Result<std::unique_ptr<InventoryService>> start(const ServiceOptions& o);

  // Fills the call's endpoint and sensitive classes; returns what makes it
  // notable to the inventory (kNotableFirst, kNotableFinding) and the level the
  // capture policy gives it on its endpoint (null policy: full).
  CallOutcome on_call(const protocols::Exchange& x, const ProcessRef& p, ApiCallEvent& call, uint64_t wall_ns,
                      const CapturePolicy* capture, const CaptureScope& scope, const Emit& emit);
  void tick(uint64_t wall_ns, const Emit& emit);
  // Writes what changed; the batch is kept for the next try when it fails.
  void save();
  nlohmann::json export_json(std::string_view service) const { return inventory_->to_json(service); }
  nlohmann::json status() const;
  const Inventory& inventory() const { return *inventory_; }

 private:
  explicit InventoryService(ServiceOptions o) : o_(std::move(o)) {}
  ServiceOptions o_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<Store> store_;
  std::string store_error_;
  uint64_t last_tick_ = 0, last_save_ = 0, saves_ = 0, saved_rows_ = 0, save_errors_ = 0;
  size_t restored_ = 0;
};

}  // namespace vigil::apimap
