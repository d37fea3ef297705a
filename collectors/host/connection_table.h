// The connection table: open TCP and connected-UDP sockets by connection id,
// kept by the kernel's open/close events.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bpf/include/vigil/abi.h"

namespace vigil {

struct ConnectionRecord {
  uint64_t id = 0;
  uint32_t pid = 0;
  int32_t fd = -1;
  vigil_conn_tuple tuple{};
  uint64_t opened_ns = 0;
};

class ConnectionTable {
 public:
  const ConnectionRecord& on_open(const vigil_conn_event& e);
  // The record that closed (or one built from the event if the open was missed).
  ConnectionRecord on_close(const vigil_conn_event& e);
  const ConnectionRecord* find(uint64_t id) const;
  // Forgets every connection of `pid`; returns their ids.
  // `before(id)` is called for each of them while its record is still here.
  std::vector<uint64_t> drop_process(uint32_t pid, const std::function<void(uint64_t)>& before = {});
  size_t size() const { return conns_.size(); }

 private:
  std::unordered_map<uint64_t, ConnectionRecord> conns_;
};

}  // namespace vigil
