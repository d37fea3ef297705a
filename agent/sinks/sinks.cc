#include "agent/sinks/sinks.h"

#include <unistd.h>

#include <algorithm>

#include "agent/events/events.h"
#include "agent/sinks/http_outputs.h"
#include "agent/sinks/outputs.h"
#include "agent/sinks/syslog.h"

namespace vigil::sinks {

namespace {

TlsOptions tls_options(const SinkConfig& c) {
  TlsOptions t;
  t.ca_file = c.ca;
  t.cert_file = c.client_cert;
  t.key_file = c.client_key;
  t.server_name = c.server_name;
  return t;
}

}  // namespace

std::string otlp_logs_url(std::string_view endpoint) {
  while (endpoint.ends_with('/')) endpoint.remove_suffix(1);
  return std::string(endpoint) + "/v1/logs";
}

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
      FileOptions fo{.path = c.path,
                     .max_bytes = uint64_t{c.max_size_mb} << 20,
                     .max_files = c.max_files,
                     .chain = c.chain,
                     .zstd = c.compress == "zstd",
                     .hmac_key = ctx.hmac_key,
                     .node = ctx.node,
                     .boot_id = ctx.boot_id};
      auto f = FileOutput::open(std::move(fo));
      if (!f) return f.error();
      if (c.chain) file = f->get();
      out = std::move(*f);
    } else if (c.type == "syslog") {
      SyslogOptions so{.address = c.address,
                       .facility = c.facility,
                       .app_name = c.app_name,
                       .format = c.format,
                       .hostname = ctx.node,
                       .io_timeout_ns = uint64_t{c.timeout_ms} * 1'000'000,
                       .tls = tls_options(c)};
      auto s = SyslogOutput::create(std::move(so));
      if (!s) return Error{fmt::format("sink {}: {}", wo.name, s.error().message)};
      out = std::move(*s);
    } else if (c.type == "webhook" || c.type == "otlp") {
      HttpSinkOptions ho;
      ho.url = c.type == "otlp" && !c.endpoint.empty() ? otlp_logs_url(c.endpoint) : c.url;
      ho.tls = tls_options(c);
      ho.timeout_ns = uint64_t{c.timeout_ms} * 1'000'000;
      ho.headers = c.headers;
      ho.gzip = c.gzip;
      ho.json_lines = c.format == "jsonl";
      ho.node = ctx.node;
      ho.boot_id = ctx.boot_id;
      ho.k8s_node = ctx.k8s_node;
      Result<std::unique_ptr<Output>> o = Error{};
      if (c.type == "webhook") {
        auto w = WebhookOutput::create(std::move(ho));
        o = w ? Result<std::unique_ptr<Output>>(std::move(*w)) : w.error();
      } else {
        auto w = OtlpOutput::create(std::move(ho));
        o = w ? Result<std::unique_ptr<Output>>(std::move(*w)) : w.error();
      }
      if (!o) return Error{fmt::format("sink {}: {}", wo.name, o.error().message)};
      out = std::move(*o);
    } else {
      return Error{fmt::format("sink type '{}' is unknown (stdout, file, syslog, webhook, otlp)", c.type)};
    }
    if (c.type != "stdout" && c.type != "file") {
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
  Sink* last = nullptr;  // takes the record itself: one copy of the line fewer per event
  auto add = [](Sink& s, Record&& rec) {
    s.batch.push_back(std::move(rec));
    if (s.batch.size() >= kFlushRecords) {
      s.worker->offer(std::span<Record>(s.batch));
      s.batch.clear();
    }
  };
  for (auto& s : sinks_) {
    if (!(s.kinds & (1u << r.kind)) || r.severity < s.min_severity) continue;
    if (last) add(*last, Record(r));
    last = &s;
  }
  if (last) add(*last, std::move(r));
}

void SinkSet::flush() {
  for (auto& s : sinks_) {
    s.worker->offer(std::span<Record>(s.batch));
    s.batch.clear();
  }
}

bool SinkSet::drain(uint64_t timeout_ns) {
  flush();
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
  flush();
  for (auto& s : sinks_) s.worker->stop();
}

std::vector<WorkerStats> SinkSet::stats() const {
  std::vector<WorkerStats> out;
  for (const auto& s : sinks_) out.push_back(s.worker->stats());
  return out;
}

}  // namespace vigil::sinks
