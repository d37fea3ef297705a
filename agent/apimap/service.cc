#include "agent/apimap/service.h"

#include <sys/stat.h>

#include <fmt/format.h>

#include "agent/events/emission.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"

namespace vigil::apimap {

Result<std::unique_ptr<InventoryService>> InventoryService::start(const ServiceOptions& o) {
  std::unique_ptr<InventoryService> s(new InventoryService(o));
  InventoryOptions io;
  io.node = o.node;
  io.max_endpoints = o.max_endpoints;
  io.path_hints = o.path_hints;
  for (const auto& f : o.declared_specs) {
    auto ops = load_spec(f);
    if (!ops) return Error{fmt::format("apimap.declared_specs: {}", ops.error().message)};
    io.declared.insert(io.declared.end(), ops->begin(), ops->end());
  }
  auto scanner = make_hyperscan_scanner();
  if (!scanner) return scanner.error();
  s->inventory_ = std::make_unique<Inventory>(std::move(io), std::move(*scanner));
  if (!o.data_dir.empty()) {
    if (auto made = ensure_private_dir(o.data_dir); !made) log::error("{}", made.error().message);
    std::string path = o.data_dir + "/inventory.db";
    auto store = Store::open(path);
    if (!store) {
      s->store_error_ = store.error().message;
      log::error("{}; the inventory is kept in memory only", s->store_error_);
    } else {
      auto loaded = (*store)->load();
      if (!loaded) {
        s->store_error_ = loaded.error().message;
        log::error("{}; the inventory starts empty", s->store_error_);
      } else {
        if (loaded->skipped) log::warn("inventory store {}: {} rows did not parse (skipped)", path, loaded->skipped);
        s->inventory_->restore(loaded->endpoints, loaded->findings, loaded->services, loaded->collapsed);
        s->restored_ = loaded->endpoints.size();
      }
      s->store_ = std::move(*store);
    }
  }
  log::info("API inventory: {} endpoints restored, {} declared operations, store {}", s->restored_,
            o.declared_specs.size(), s->store_ ? s->store_->path() : "none (memory only)");
  return s;
}

CallOutcome InventoryService::on_call(const protocols::Exchange& x, const ProcessRef& p, ApiCallEvent& call,
                                   uint64_t wall_ns, const CapturePolicy* capture, const CaptureScope& scope,
                                   const Emit& emit) {
  CallInput in;
  in.capture = capture;
  in.scope = scope;
  in.exchange = &x;
  in.process = &p;
  in.role = call.role;
  in.protocol = call.protocol == "http/1.0" ? std::string_view("http/1.1") : std::string_view(call.protocol);
  in.method = call.request.method;
  in.host = call.request.host;
  in.path = call.request.path;
  in.query = protocols::split_target(x.request.target).query;  // raw: auth and URL secrets need it
  in.status = call.response.status;
  in.latency_ns = call.latency_ns;
  in.tls = call.tls;
  in.remote_addr = call.conn.remote.addr;
  in.remote_port = call.conn.remote.port;
  in.local_addr = call.conn.local.addr;
  in.wall_ns = wall_ns;
  CallResult r = inventory_->observe(in, emit);
  call.endpoint = std::move(r.endpoint);
  call.sensitive = sensitive_names(r.sensitive);
  return {static_cast<uint8_t>((r.first ? kNotableFirst : 0) | (r.finding ? kNotableFinding : 0)), r.level};
}

void InventoryService::tick(uint64_t now, const Emit& emit) {
  if (now - last_tick_ >= 1'000'000'000ull) {
    last_tick_ = now;
    inventory_->tick(now, emit);
  }
  if (store_ && now - last_save_ >= o_.save_interval_ns) {
    last_save_ = now;
    save();
  }
}

void InventoryService::save() {
  if (!store_) return;
  Inventory::Changes c = inventory_->take_changes();
  auto n = store_->save(c);
  if (!n) {
    inventory_->requeue(c);
    if (save_errors_++ == 0 || save_errors_ % 100 == 0) log::error("{} (kept for the next batch)", n.error().message);
    store_error_ = n.error().message;
    return;
  }
  store_error_.clear();
  ++saves_;
  saved_rows_ += *n;
}

nlohmann::json InventoryService::status() const {
  const Inventory& i = *inventory_;
  return {{"endpoints", i.endpoints()},   {"pending", i.pending()},
          {"findings", i.findings()},     {"evicted", i.evicted()},
          {"calls", i.calls()},           {"memory_bytes", i.memory_bytes()},
          {"restored", restored_},        {"store", store_ ? store_->path() : ""},
          {"store_error", store_error_},  {"saves", saves_},
          {"saved_rows", saved_rows_},    {"save_errors", save_errors_}};
}

}  // namespace vigil::apimap
