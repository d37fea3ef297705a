#include "agent/sinks/sinks.h"

#include <unistd.h>

#include <algorithm>

#include "agent/events/events.h"
#include "agent/sinks/outputs.h"
#include "agent/sinks/syslog.h"

namespace vigil::sinks {

std::string sink_name(const std::vector<SinkConfig>& configs, size_t i) {
  return configs[i].name.empty() ? configs[i].type : configs[i].name;  // the config names repeated types
}

Result<std::unique_ptr<SinkSet>> SinkSet::open(const std::vector<SinkConfig>& configs, const SinkContext& ctx) {
  std::unique_ptr<SinkSet> set(new SinkSet);
  for (size_t i = 0; i < configs.size(); ++i) {
    const SinkConfig& c = configs[i];
    WorkerOptions wo;
    wo.name = sink_name(configs, i);
    wo.queue_max_bytes = static_cast<size_t>(c.queue_max_mb) << 20;
    std::unique_ptr<Output> out;
    std::unique_ptr<Spool> spool;
    FileOutput* file = nullptr;
    if (c.type == "stdout") {
      out = std::make_unique<FdOutput>("stdout", STDOUT_FILENO);
    } else if (c.type == "file") {
      auto f = FileOutput::open(
          {c.path, uint64_t{c.max_size_mb} << 20, c.max_files, c.chain, ctx.hmac_key, ctx.node, ctx.boot_id});
      if (!f) return f.error();
      if (c.chain) file = f->get();
      out = std::move(*f);
    } else if (c.type == "syslog") {
      auto s = SyslogOutput::create({c.address, c.facility, c.app_name, ctx.node});
      if (!s) return Error{fmt::format("sink {}: {}", wo.name, s.error().message)};
      out = std::move(*s);
    } else {
      return Error{fmt::format("sink type '{}' is not implemented in this version of vigild "
                               "(implemented: stdout, file, syslog)", c.type)};
    }
    if (c.type == "syslog") {
      SpoolOptions so;
      so.max_bytes = uint64_t{c.spool_max_mb} << 20;
      so.fsync_interval_ns = uint64_t{c.fsync_interval_ms} * 1'000'000;
      auto sp = Spool::open(fmt::format("{}/spool/{}", ctx.data_dir, wo.name), so);
      if (!sp) return Error{fmt::format("sink {}: {}", wo.name, sp.error().message)};
      spool = std::move(*sp);
    }
    Sink s;
    s.file = file;
    if (!c.kinds.empty()) {
      s.kinds = 0;
      for (const auto& k : c.kinds)
        if (int idx = event_kind_index(k); idx >= 0) s.kinds |= 1u << idx;
    }
    int sev = parse_severity(c.min_severity);
    s.min_severity = static_cast<uint8_t>(sev < 0 ? 0 : sev);
    s.worker = std::make_unique<Worker>(std::move(wo), std::move(out), std::move(spool));
    set->sinks_.push_back(std::move(s));
  }
  return set;
}

SinkSet::~SinkSet() { stop(); }

void SinkSet::offer(const Event& e, std::string_view line) {
  Record r = record_of(e, line);
  Worker* last = nullptr;  // takes the record itself: one copy of the line fewer per event
  for (auto& s : sinks_) {
    if (!(s.kinds & (1u << r.kind)) || r.severity < s.min_severity) continue;
    if (last) last->offer(Record(r));
    last = s.worker.get();
  }
  if (last) last->offer(std::move(r));
}

bool SinkSet::drain(uint64_t timeout_ns) {
  bool ok = true;
  for (auto& s : sinks_) ok = s.worker->drain(timeout_ns) && ok;
  return ok;
}

std::vector<std::pair<std::string, FileOutput::ChainState>> SinkSet::chains() const {
  std::vector<std::pair<std::string, FileOutput::ChainState>> out;
  for (const auto& s : sinks_)
    if (s.file) out.emplace_back(s.worker->name(), s.file->chain_state());
  return out;
}

void SinkSet::stop() {
  for (auto& s : sinks_) s.worker->stop();
}

std::vector<WorkerStats> SinkSet::stats() const {
  std::vector<WorkerStats> out;
  for (const auto& s : sinks_) out.push_back(s.worker->stats());
  return out;
}

}  // namespace vigil::sinks
