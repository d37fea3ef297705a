#include "collectors/host/connection_table.h"

namespace vigil {
namespace {
ConnectionRecord record_of(const vigil_conn_event& e) {
  return ConnectionRecord{e.conn_id, e.hdr.pid, e.fd, e.tuple, e.hdr.ts_ns};
}
}  // namespace

const ConnectionRecord& ConnectionTable::on_open(const vigil_conn_event& e) {
  return conns_[e.conn_id] = record_of(e);
}

ConnectionRecord ConnectionTable::on_close(const vigil_conn_event& e) {
  auto it = conns_.find(e.conn_id);
  if (it == conns_.end()) return record_of(e);
  ConnectionRecord r = it->second;
  conns_.erase(it);
  return r;
}

const ConnectionRecord* ConnectionTable::find(uint64_t id) const {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : &it->second;
}

std::vector<uint64_t> ConnectionTable::drop_process(uint32_t pid, const std::function<void(uint64_t)>& before) {
  std::vector<uint64_t> ids;
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (it->second.pid == pid) {
      ids.push_back(it->first);
      if (before) before(it->first);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  return ids;
}

}  // namespace vigil
