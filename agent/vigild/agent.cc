#include "agent/vigild/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/ranges.h>

#include "agent/control/handlers.h"
#include "agent/metrics/exposition.h"
#include "agent/vigild/version.h"
#include "base/caps.h"
#include "base/file.h"
#include "base/log.h"
#include "collectors/host/open_sockets.h"
#include "collectors/kernel/egress_enforcer.h"
#include "collectors/kernel/system.h"
#include "policy/selector.h"

namespace vigil {
namespace {

// Connections older than the agent handed to the kernel as seeds: a quarter of
// its connection table (bpf/observe/maps.bpf.h `conns`).
constexpr size_t kMaxSeededConnections = 16384;

}  // namespace

Agent::Agent(Config config, AgentOptions options)
    : config_(std::move(config)), options_(options) {
  node_ = config_.node_name;
  // In a DaemonSet the container's hostname is the pod's: the node's name comes
  // from the downward API (spec.nodeName as VIGIL_NODE_NAME).
  if (const char* v = getenv("VIGIL_NODE_NAME")) k8s_node_ = v;
  if (node_.empty()) node_ = k8s_node_;
  if (node_.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    node_ = host;
  }
}

Agent::~Agent() {
  if (pod_watcher_) pod_watcher_->stop();
  if (sinks_) sinks_->stop();
}

// Pod metadata: on with kubernetes.enabled true, or auto and a service account token
// (in a pod). The watcher's first list runs on its own thread; until it answers,
// events go out without pod fields.
Status Agent::start_kubernetes() {
  const auto& k = config_.kubernetes;
  if (k.enabled == "false") return {};
  bool have_token = access(k.token_file.c_str(), R_OK) == 0;
  if (k.enabled == "auto" && !have_token) return {};
  auto s = open_kubernetes();
  // auto: a token without a usable API server costs the pod metadata, not the agent.
  if (!s && k.enabled == "auto") {
    log::warn("{} (kubernetes.enabled: auto; pod metadata off)", s.error().message);
    pods_.reset();
    return {};
  }
  return s;
}

Status Agent::open_kubernetes() {
  const auto& k = config_.kubernetes;
  k8s::WatcherOptions wo;
  wo.api_server = k.api_server.empty() ? k8s::in_cluster_api_server() : k.api_server;
  if (wo.api_server.empty())
    return Error{"kubernetes: no API server (set kubernetes.api_server, or run in a pod: KUBERNETES_SERVICE_HOST)"};
  wo.token_file = k.token_file;
  wo.ca_file = k.ca_file;
  wo.node = k8s_node_.empty() ? node_ : k8s_node_;
  pods_ = std::make_unique<k8s::PodCache>(k.labels, k.max_pods);
  auto w = k8s::PodWatcher::start(wo, *pods_);
  if (!w) return w.error();
  pod_watcher_ = std::move(*w);
  mapper_->set_process_enricher([this](ProcessRef& r) {
    auto v = pods_->lookup(r.pod_uid, r.container_id);
    if (!v) return;
    r.k8s_namespace = std::move(v->ns);
    r.pod = std::move(v->pod);
    r.container = std::move(v->container);
    r.workload_kind = std::move(v->workload.kind);
    r.workload = std::move(v->workload.name);
    r.labels.assign(v->labels.begin(), v->labels.end());
  });
  log::info("kubernetes: pod metadata from {} for node {}", wo.api_server, wo.node);
  return {};
}

Status Agent::start() {
  started_ns_ = BootClock::now_wall_ns();
  route_libbpf_logs(options_.verbose);
  const uint64_t caps = caps::effective();
  if (!caps::has_bpf_perfmon(caps))
    return Error{fmt::format("vigild needs CAP_BPF and CAP_PERFMON to load its programs; it runs with {:#x} "
                             "(CapEff). {}", caps, fmt::join(caps::missing(caps), "; "))};
  for (const auto& m : caps::missing(caps)) log::warn("{}", m);
  if (geteuid() != 0)
    log::warn("vigild runs as uid {}: the pins under {} and tracefs's uprobe_events are root's (uid 0 or "
              "CAP_DAC_OVERRIDE)", geteuid(), config_.policies.pin_dir);
  if (auto s = ensure_kernel_mounts(); !s) return s;
  if (auto s = raise_memlock_limit(); !s) log::debug("{}", s.error().message);

  // The inventory, spools, checkpoints and the disable marker: root's alone.
  if (auto s = ensure_private_dir(config_.data_dir); !s) return Error{fmt::format("data_dir: {}", s.error().message)};
  boot_id_ = trim_right(read_small_file("/proc/sys/kernel/random/uuid"));
  if (boot_id_.empty()) boot_id_ = fmt::format("{:016x}", started_ns_ ^ (uint64_t{static_cast<uint32_t>(getpid())} << 32));
  std::string hmac_key;
  if (!config_.audit.key_file.empty()) {
    auto key = read_file(config_.audit.key_file);
    if (!key) return Error{fmt::format("audit.key_file: {}", key.error().message)};
    if (key->size() < 16) return Error{fmt::format("audit.key_file {}: the HMAC key must be at least 16 bytes", config_.audit.key_file)};
    hmac_key = std::move(*key);
  }
  if (!config_.audit.signing_key.empty()) {
    auto signer = audit::Signer::load(config_.audit.signing_key);
    if (!signer) return signer.error();
    signer_ = std::move(*signer);
    if (auto s = ensure_private_dir(config_.data_dir + "/checkpoints"); !s) return s.error();  // <sink>.jsonl each
  }
  auto sinks = sinks::SinkSet::open(config_.events.sinks, {config_.data_dir, node_, boot_id_, hmac_key, k8s_node_});
  if (!sinks) return sinks.error();
  sinks_ = std::move(*sinks);

  std::string cg_mount;
  if (auto m = find_cgroup2_mount(read_small_file("/proc/self/mountinfo")); m) {
    cg_mount = *m;
  } else {
    log::warn("{}; cgroup paths will be missing from events", m.error().message);
  }
  cgroups_ = std::make_unique<CgroupResolver>(cg_mount, "/proc");
  procs_ = std::make_unique<ProcessTable>("/proc", cgroups_.get());
  CaptureOptions capture{config_.capture.level, config_.capture.full_first, config_.capture.full_sample_every,
                         config_.capture.rules};
  // The inventory classifies and infers schemas from body prefixes: keep them for
  // it too, unless no call is ever looked at in full.
  bool keep_bodies = CapturePolicy(capture).may_be_full() && (config_.capture.bodies || config_.apimap.enabled);
  mapper_ = std::make_unique<EventMapper>(*procs_, conns_, clock_, node_,
                                          ApiCallOptions{.bodies = config_.capture.bodies},
                                          keep_bodies ? config_.capture.max_capture_bytes : 0,
                                          ApiCallSampler::Options{parse_api_call_emission(config_.events.api_call).value_or(ApiCallEmission::kAll),
                                                                  config_.events.api_call_sample_every},
                                          std::move(capture));
  if (auto s = start_kubernetes(); !s) return s;
  if (config_.apimap.enabled) {
    apimap::ServiceOptions ao{node_, config_.data_dir, config_.apimap.path_hints, config_.apimap.declared_specs,
                              config_.apimap.max_endpoints};
    auto inv = apimap::InventoryService::start(ao);
    if (!inv) return inv.error();
    inventory_ = std::move(*inv);
    mapper_->set_call_observer(
        [this](const protocols::Exchange& x, const ProcessRef& p, ApiCallEvent& call, uint64_t wall_ns,
               const CaptureScope& scope) {
          return inventory_->on_call(x, p, call, wall_ns, &mapper_->capture(), scope,
                                     [this](Event&& e) { ship(std::move(e)); });
        });
  }

  ObserverOptions oo;
  oo.self_pid = static_cast<uint32_t>(getpid());
  oo.capture_bytes = config_.capture.http || config_.capture.tls ? config_.capture.max_capture_bytes : 0;
  oo.tls = config_.capture.tls;
  // Measurement switch for bench/ (does protocol inference pay?); not a config key.
  if (const char* v = std::getenv("VIGIL_BENCH_NO_L7_INFERENCE"); v && std::string(v) == "1")
    oo.infer_l7 = false;
  auto obs = Observer::create(oo, [this](const KernelEvent& ev) { on_kernel_event(ev); });
  if (!obs) return obs.error();
  observer_ = std::move(*obs);
  // Seed after attaching: a process started in between is then seen either way.
  size_t n = procs_->seed();
  if (oo.capture_bytes > 0) {
    // Keep-alive connections older than the agent: captured from their next use.
    OpenSocketScan open = find_open_sockets("/proc", oo.self_pid, kMaxSeededConnections);
    size_t seeded = observer_->seed_connections(open.sockets);
    log::info("{} connections open before the start are captured from their next request{}", seeded,
              open.over_limit ? fmt::format(" ({} more are not: over {})", open.over_limit, kMaxSeededConnections)
                              : "");
  }
  if (oo.capture_bytes > 0 && config_.capture.tls) {
    tls_ = std::make_unique<TlsManager>(*observer_);
    mapper_->set_tls_names([this](uint8_t id) { return tls_->lib_name(id); });
    tls_->attach_host_libraries();  // a new process's first call is seen
    tls_->scan_all();               // processes already running are covered from here on
  }

  auto ctl = ControlServer::listen(config_.control_socket, [this] { return status(); });
  if (!ctl) return ctl.error();
  control_ = std::move(*ctl);
  if (!config_.metrics.listen.empty()) {
    // A busy port costs the metrics, not the agent: it says so and runs on.
    auto m = metrics::Server::listen(config_.metrics.listen, {[this] { return metrics_text(); },
                                                              [this] { return not_ready_reason(); }});
    if (m) metrics_ = std::move(*m);
    else log::warn("{} (metrics off; set metrics.listen to another address)", m.error().message);
  }

  PolicyServiceOptions po{config_.policies.dir, config_.data_dir, config_.policies.pin_dir, cg_mount};
  if (pods_) {
    po.pod_uids = [this](const policy::PodSelector& ps) {
      // Finished pods keep their API object but not their cgroup.
      return pods_->uids_where([&](const k8s::Pod& p) {
        return p.phase != "Succeeded" && p.phase != "Failed" && policy::pod_matches(ps, p.ns, p.labels);
      });
    };
    po.pods_generation = [this] { return pods_->generation(); };
  }
  EgressOptions eo{config_.policies.pin_dir, cg_mount, config_.policies.dns_ports, config_.policies.dns_min_ttl};
  policies_ = std::make_unique<PolicyService>(
      po,
      [eo, caps](policy::Enforcer::Handler on_verdict) -> Result<std::unique_ptr<policy::Enforcer>> {
        if (!caps::has_net_admin(caps))
          return Error{"enforcing needs CAP_NET_ADMIN (cgroup connect/sendmsg programs), which vigild has not got"};
        auto e = EgressEnforcer::open(eo, std::move(on_verdict));
        if (!e) return e.error();
        return std::unique_ptr<policy::Enforcer>(std::move(*e));
      },
      [this](Event&& e) { ship(std::move(e)); },
      [this](const vigil_event_header& hdr) { return mapper_->process_ref(hdr); });
  if (auto s = policies_->start(); !s) log::error("egress policies: {}", s.error().message);
  serve_policy_commands(*control_, *policies_);
  control_->on(control::kMapExport, [this](const nlohmann::json& req) -> nlohmann::json {
    if (!inventory_) return {{"ok", false}, {"errors", {"the API inventory is off (apimap.enabled: false)"}}};
    std::string service = req.contains("service") && req["service"].is_string() ? req["service"].get<std::string>() : "";
    return {{"ok", true}, {"inventory", inventory_->export_json(service)}};
  });

  size_t attached = attached_programs();
  log::info("vigild {} on {}: {} programs attached, {} processes known, control socket {}",
            VIGIL_VERSION, node_, attached, n, config_.control_socket);
  for (const auto& s : sinks_->stats())
    log::info("events go to sink {} ({}){}", s.name, s.output,
              s.spool_records ? fmt::format(", {} events spooled from before", s.spool_records) : "");
  return {};
}

void Agent::on_kernel_event(const KernelEvent& ev) {
  ++kernel_events_;
  if (auto* exit = std::get_if<const vigil_exit_event*>(&ev)) observer_->forget_seeds((*exit)->hdr.pid);
  if (tls_)
    if (auto* exec = std::get_if<const vigil_exec_event*>(&ev))
      tls_->on_exec((*exec)->hdr.pid, BootClock::now_wall_ns());
  auto emit = [this](Event&& e) { ship(std::move(e)); };
  std::visit([&](const auto* record) { mapper_->handle(*record, emit); }, ev);
}

void Agent::ship(Event&& event) {
  if (!config_.kind_enabled(event.kind())) return;
  if (event.process && !config_.capture.exclude_comms.empty() &&
      std::find(config_.capture.exclude_comms.begin(), config_.capture.exclude_comms.end(),
                event.process->comm) != config_.capture.exclude_comms.end())
    return;
  if (event.node.empty()) event.node = node_;
  event.seq = ++seq_;
  event.boot_id = boot_id_;
  ++events_by_kind_[event.kind()];
  if (const auto* eg = std::get_if<EgressEvent>(&event.body)) ++egress_verdicts_[{eg->verdict, eg->policy}];
  encode_json(event, line_);
  sinks_->offer(event, line_);
  if (control_) control_->publish(event, line_);
}

void Agent::checkpoint(uint64_t now, bool force) {
  if (!signer_) return;
  bool interval = now - last_checkpoint_ns_ >= uint64_t{config_.audit.checkpoint_interval_s} * 1'000'000'000ull;
  for (const auto& [name, st] : sinks_->chains()) {
    if (st.hash.empty()) continue;
    uint64_t& seen = checkpoint_rotations_[name];
    bool rotated = seen != st.rotations;
    if (!force && !interval && !rotated) continue;
    seen = st.rotations;
    audit::Checkpoint c{name, st.file, st.seq, st.hash, format_rfc3339_ns(now), node_, boot_id_, ""};
    signer_->sign(c);
    std::string path = fmt::format("{}/checkpoints/{}.jsonl", config_.data_dir, name);
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    std::string line = audit::to_json_line(c) + "\n";
    if (!fd || ::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      log::warn("{}", os_error("write checkpoint to " + path).message);
    Event e;
    e.time_ns = now;
    e.body = CheckpointEvent{c.sink, c.file, c.seq, c.hash, c.signature, c.time};
    ship(std::move(e));
  }
  if (interval) last_checkpoint_ns_ = now;
}

void Agent::report_lost() {
  std::map<std::string, uint64_t> totals;
  auto observed = observer_->lost_counters();
  for (size_t i = 0; i < observed.size(); ++i) totals[kObserveLostSources[i]] = observed[i];
  auto egress = policies_->lost_counters();
  for (size_t i = 0; i < egress.size(); ++i) totals[policy::kEgressLostSources[i]] = egress[i];
  const HttpStats http = mapper_->http_stats();
  totals["http_unpaired_requests"] = http.unpaired_requests;
  totals["http_unpaired_responses"] = http.unpaired_responses;
  totals["http2_partial_streams"] = http.partial_streams;
  totals["connection_close_missed"] = http.missed_closes;
  totals["malformed_kernel_event"] = observer_->malformed_events();
  for (const auto& s : sinks_->stats()) {
    totals["sink_" + s.name] = s.dropped_total();
    if (s.spool_corrupt) totals["sink_" + s.name + "_spool_corrupt"] = s.spool_corrupt;
  }
  if (control_) totals["trace_client_backlog"] = control_->dropped();
  for (const auto& [source, total] : totals) {
    uint64_t& seen = lost_reported_[source];
    if (total <= seen) continue;
    Event e;
    e.time_ns = BootClock::now_wall_ns();
    e.node = node_;
    e.body = LostEvent{source, total - seen};
    seen = total;
    log::warn("lost {} from {}", std::get<LostEvent>(e.body).count, source);
    ship(std::move(e));
  }
}

nlohmann::json Agent::tls_status() const {
  nlohmann::json libs = nlohmann::json::array();
  if (!tls_) return libs;
  for (const auto& l : tls_->status())
    libs.push_back({{"id", l.id}, {"path", l.path}, {"lib", l.kind}, {"version", l.version}, {"probes", l.probes},
                    {"processes", l.processes}, {"attached", !l.probes.empty()}, {"error", l.error}});
  return libs;
}

nlohmann::json Agent::tls_counters() const {
  if (!tls_) return nlohmann::json::object();
  auto c = tls_->counters();
  return {{"attached_files", c.attached}, {"rejected_files", c.rejected},
          {"rejected_remembered", c.remembered_rejected}, {"deferred_attaches", c.deferred},
          {"detaching_probes", c.detaching}};
}

nlohmann::json Agent::status() const {
  const HttpStats http = mapper_->http_stats();
  nlohmann::json progs = nlohmann::json::array();
  for (const auto& p : observer_->programs())
    progs.push_back({{"name", p.name}, {"id", p.id}, {"attached", p.attached}});
  nlohmann::json lost = nlohmann::json::object();
  for (const auto& [k, v] : lost_reported_) lost[k] = v;
  nlohmann::json sinks = nlohmann::json::array();
  for (const auto& s : sinks_->stats()) {
    nlohmann::json dropped = nlohmann::json::object();
    for (int c = 0; c < sinks::kShedClasses; ++c) dropped[std::string(sinks::shed_class_name(c))] = s.dropped[c];
    sinks.push_back({{"name", s.name},
                     {"output", s.output},
                     {"spooled", s.spooled},
                     {"queued", s.queued},
                     {"queue_bytes", s.queue_bytes},
                     {"queue_capacity", s.queue_capacity},
                     {"spool_bytes", s.spool_bytes},
                     {"spool_records", s.spool_records},
                     {"spool_corrupt", s.spool_corrupt},
                     {"delivered", s.delivered},
                     {"rejected", s.rejected},
                     {"retries", s.retries},
                     {"dropped", dropped},
                     {"oldest_unacked_ns", s.oldest_unacked_ns},
                     {"last_error", s.last_error},
                     {"last_reject", s.last_reject},
                     {"errors", s.last_error.empty() ? 0 : 1}});
  }
  return {{"agent", "vigild"},
          {"version", VIGIL_VERSION},
          {"pid", getpid()},
          {"node", node_},
          {"boot_id", boot_id_},
          {"uptime_s", (BootClock::now_wall_ns() - started_ns_) / 1'000'000'000ull},
          {"programs", progs},
          {"counters",
           {{"kernel_events", kernel_events_},
            {"events", seq_},
            {"events_by_kind", events_by_kind_},
            {"lost", lost},
            {"processes", procs_->size()},
            {"connections", conns_.size()},
            {"http",
             {{"api_calls", http.api_calls},
              {"api_call_events", {{"level", to_string(mapper_->emission().options().mode)},
                                   {"sample_every", mapper_->emission().options().sample_every},
                                   {"shipped", mapper_->emission().shipped()},
                                   {"skipped", mapper_->emission().skipped()}}},
              {"capture", mapper_->capture().status()},
              {"open_http_connections", http.trackers},
              {"uncaptured_bytes", http.gap_bytes}}},
            {"trace_clients", control_->subscribers()},
            {"tls", tls_counters()}}},
          {"sinks", sinks},
          {"metrics", {{"listen", config_.metrics.listen}, {"port", metrics_ ? metrics_->port() : 0},
                       {"scrapes", metrics_ ? metrics_->requests() : 0}}},
          {"egress", policies_->status()},
          {"inventory", inventory_ ? inventory_->status() : nlohmann::json{{"enabled", false}}},
          {"kubernetes", pod_watcher_ ? pod_watcher_->status() : nlohmann::json{{"enabled", false}}},
          {"tls", tls_status()}};
}

std::string Agent::not_ready_reason() const {
  for (const auto& p : observer_->programs())
    if (!p.attached) return fmt::format("program {} is not attached", p.name);
  return "";  // sinks are open once start() returned
}

std::string Agent::metrics_text() const {
  metrics::Exposition m;
  auto num = [](auto v) { return static_cast<double>(v); };
  m.family("vigil_build_info", "gauge", "The running vigild: version, node and boot_id.");
  m.sample({{"version", VIGIL_VERSION}, {"node", node_}, {"boot_id", boot_id_}}, 1);
  m.family("vigil_uptime_seconds", "gauge", "Seconds since vigild started.");
  m.sample(num((BootClock::now_wall_ns() - started_ns_) / 1'000'000'000ull));
  m.family("vigil_kernel_events_total", "counter", "Records read from the kernel ring buffers.");
  m.sample(num(kernel_events_));
  m.family("vigil_events_total", "counter", "Events shipped, by kind.");
  for (const auto& [kind, n] : events_by_kind_) m.sample({{"kind", kind}}, num(n));
  m.family("vigil_lost_events_total", "counter", "Events lost, by where (the lost events' sources).");
  for (const auto& [source, n] : lost_reported_) m.sample({{"source", source}}, num(n));
  const HttpStats http = mapper_->http_stats();
  m.family("vigil_api_calls_total", "counter", "HTTP and gRPC exchanges paired into api_call events.");
  m.sample(num(http.api_calls));
  m.family("vigil_api_call_events_skipped_total", "counter",
           "api_calls counted and fed to the inventory but not shipped as events (events.api_call: sampled, notable).");
  m.sample(num(mapper_->emission().skipped()));
  m.family("vigil_api_calls_captured_total", "counter",
           "api_calls by the capture level they were looked at with (capture.level, capture.rules).");
  const auto& captured = mapper_->capture().counts();
  for (CaptureLevel l : {CaptureLevel::kMetadata, CaptureLevel::kHeaders, CaptureLevel::kFull})
    m.sample({{"level", std::string(to_string(l))}}, num(captured[static_cast<size_t>(l)]));
  m.family("vigil_parse_errors_total", "counter", "Messages the protocol trackers could not pair or finish, by protocol.");
  m.sample({{"protocol", "http1"}, {"reason", "unpaired_request"}}, num(http.unpaired_requests));
  m.sample({{"protocol", "http1"}, {"reason", "unpaired_response"}}, num(http.unpaired_responses));
  m.sample({{"protocol", "http2"}, {"reason", "partial_stream"}}, num(http.partial_streams));
  m.family("vigil_uncaptured_bytes_total", "counter", "Payload bytes beyond the capture cap or lost, skipped by the parsers.");
  m.sample(num(http.gap_bytes));
  m.family("vigil_ringbuf_lost_total", "counter", "Kernel records dropped because a ring buffer was full, by ring.");
  auto observed = observer_->lost_counters();
  for (size_t i = 0; i < observed.size(); ++i)
    if (std::string_view(kObserveLostSources[i]).find("ringbuf") != std::string_view::npos)
      m.sample({{"ring", kObserveLostSources[i]}}, num(observed[i]));
  m.family("vigil_programs_attached", "gauge", "BPF programs of the observer, 1 when attached.");
  for (const auto& p : observer_->programs()) m.sample({{"program", p.name}}, p.attached ? 1 : 0);
  m.family("vigil_probes_attached", "gauge", "TLS uprobes attached, by library kind and path.");
  // Attached files only (bounded per owner); files that cannot be probed are a count,
  // not a series each (security review F15).
  if (tls_)
    for (const auto& l : tls_->status())
      if (!l.probes.empty()) m.sample({{"lib", l.kind}, {"path", l.path}}, num(l.probes.size()));
  if (tls_) {
    auto c = tls_->counters();
    m.family("vigil_tls_files_rejected_total", "counter", "Mapped files found to hold no TLS library that can be probed.");
    m.sample(num(c.rejected));
    m.family("vigil_tls_attach_deferred_total", "counter", "TLS attaches put off to a later look by the per-tick attach budget.");
    m.sample(num(c.deferred));
  }
  m.family("vigil_processes", "gauge", "Processes in the process table.");
  m.sample(num(procs_->size()));
  m.family("vigil_connections", "gauge", "Open connections tracked.");
  m.sample(num(conns_.size()));
  m.family("vigil_egress_verdicts_total", "counter", "Egress verdicts reported, by verdict and policy.");
  for (const auto& [k, n] : egress_verdicts_) m.sample({{"verdict", k.first}, {"policy", k.second}}, num(n));
  if (inventory_) {
    nlohmann::json inv = inventory_->status();
    m.family("vigil_apimap_endpoints", "gauge", "Endpoints in the API inventory.");
    m.sample(num(inv.value("endpoints", uint64_t{0})));
    m.family("vigil_apimap_findings", "gauge", "Open risk findings in the API inventory.");
    m.sample(num(inv.value("findings", uint64_t{0})));
  }
  auto stats = sinks_->stats();
  m.family("vigil_sink_queue_depth", "gauge", "Events waiting in a sink's in-memory queue.");
  for (const auto& s : stats) m.sample({{"sink", s.name}}, num(s.queued));
  m.family("vigil_sink_queue_bytes", "gauge", "Bytes in a sink's in-memory queue.");
  for (const auto& s : stats) m.sample({{"sink", s.name}}, num(s.queue_bytes));
  m.family("vigil_sink_queue_capacity_bytes", "gauge", "A sink's in-memory queue limit (queue_max_mb).");
  for (const auto& s : stats) m.sample({{"sink", s.name}}, num(s.queue_capacity));
  m.family("vigil_sink_spool_bytes", "gauge", "Bytes in a network sink's disk spool.");
  for (const auto& s : stats)
    if (s.spooled) m.sample({{"sink", s.name}}, num(s.spool_bytes));
  m.family("vigil_sink_pending", "gauge", "Events taken by a sink and not yet acknowledged.");
  for (const auto& s : stats) m.sample({{"sink", s.name}}, num(s.pending));
  m.family("vigil_sink_oldest_unacked_seconds", "gauge", "Age of the oldest event a sink has not delivered (0: none).");
  uint64_t now = BootClock::now_wall_ns();
  for (const auto& s : stats)
    m.sample({{"sink", s.name}}, s.oldest_unacked_ns && now > s.oldest_unacked_ns
                                     ? num(now - s.oldest_unacked_ns) / 1e9 : 0.0);
  m.family("vigil_sink_delivered_total", "counter", "Events a sink delivered (acknowledged or written).");
  for (const auto& s : stats) m.sample({{"sink", s.name}}, num(s.delivered));
  m.family("vigil_sink_retries_total", "counter", "Delivery attempts that failed and were retried.");
  for (const auto& s : stats) m.sample({{"sink", s.name}}, num(s.retries));
  m.family("vigil_sink_dropped_total", "counter", "Events a sink dropped: shed by class when full, or rejected by the receiver.");
  for (const auto& s : stats) {
    for (int c = 0; c < sinks::kShedClasses; ++c)
      m.sample({{"sink", s.name}, {"reason", fmt::format("shed_{}", sinks::shed_class_name(c))}}, num(s.dropped[c]));
    m.sample({{"sink", s.name}, {"reason", "rejected"}}, num(s.rejected));
  }
  m.family("vigil_sink_spool_corrupt_total", "counter", "Spool records skipped as corrupt.");
  for (const auto& s : stats)
    if (s.spooled) m.sample({{"sink", s.name}}, num(s.spool_corrupt));
  m.family("vigil_sink_up", "gauge", "1 when a sink's last delivery attempt succeeded.");
  for (const auto& s : stats) m.sample({{"sink", s.name}}, s.last_error.empty() ? 1 : 0);
  m.family("vigil_trace_clients", "gauge", "Clients of `vigil trace`.");
  m.sample(num(control_->subscribers()));
  return m.text();
}

size_t Agent::attached_programs() const {
  auto progs = observer_->programs();
  return std::count_if(progs.begin(), progs.end(), [](auto& p) { return p.attached; });
}

std::string Agent::status_line() const {
  size_t attached = attached_programs();
  uint64_t lost = 0;
  for (const auto& [_, n] : lost_reported_) lost += n;
  return fmt::format("{} programs attached, {} events shipped, {} lost, {} sinks{}", attached, seq_, lost,
                     config_.events.sinks.size(), policies_->status().value("state", "") == "enforcing" ? ", enforcing" : "");
}

int Agent::run(const std::atomic<bool>& stop, std::atomic<bool>* reload) {
  std::vector<pollfd> fds;
  uint64_t last_tick = 0, last_http_tick = 0, last_resync = BootClock::now_wall_ns();
  // start() attached the programs and opened the sinks: what READY=1 promises.
  if (notify_.active()) notify_.ready(status_line());
  while (!stop.load()) {
    fds.clear();
    fds.push_back({observer_->epoll_fd(), POLLIN, 0});
    fds.push_back({policies_->epoll_fd(), POLLIN, 0});  // -1 (ignored) until enforcing
    fds.push_back({policies_->inotify_fd(), POLLIN, 0});
    constexpr size_t kOwnFds = 3;
    control_->fill_pollfds(fds);
    const size_t metrics_at = fds.size();
    if (metrics_) metrics_->fill_pollfds(fds);
    // Payload records do not wake us (see event__wakeup_flags in
    // bpf/observe/ring.bpf.h): the timeout bounds their delivery delay.
    int rc = ::poll(fds.data(), fds.size(), 20);
    if (rc < 0 && errno != EINTR) {
      log::error("{}", os_error("poll").message);
      return 1;
    }
    if (auto n = observer_->consume(); !n) log::warn("{}", n.error().message);
    policies_->consume();
    if (rc > 0 && (fds[2].revents & POLLIN)) policies_->on_inotify();
    if (reload && reload->exchange(false)) {
      notify_.reloading();
      policies_->reload(ReloadReason::kSignal);
      if (notify_.active()) notify_.ready(status_line());
    }
    if (rc > 0) control_->service(fds.data() + kOwnFds, metrics_at - kOwnFds);
    if (metrics_) metrics_->service(fds.data() + metrics_at, fds.size() - metrics_at, BootClock::now_wall_ns());
    uint64_t now = BootClock::now_wall_ns();
    notify_.tick(now);
    if (now - last_http_tick >= 100'000'000ull) {
      last_http_tick = now;
      mapper_->tick(clock_.to_boot_ns(now), [this](Event&& e) { ship(std::move(e)); });
      policies_->tick(now);
      if (tls_) tls_->tick(now);
      if (inventory_) inventory_->tick(now, [this](Event&& e) { ship(std::move(e)); });
      checkpoint(now, false);
    }
    if (now - last_tick >= 1'000'000'000ull) {
      last_tick = now;
      report_lost();
      if (notify_.active()) notify_.status(status_line());
    }
    if (now - last_resync >= 60'000'000'000ull) {
      last_resync = now;
      clock_.resync();
    }
    sinks_->flush();  // this round's events, one batch per sink
  }
  notify_.stopping();
  // Drain what the kernel already produced before detaching.
  (void)observer_->consume();
  policies_->consume();
  report_lost();
  if (inventory_) {
    inventory_->tick(BootClock::now_wall_ns(), [this](Event&& e) { ship(std::move(e)); });
    inventory_->save();
  }
  if (signer_) {  // the last checkpoint names the last line written
    sinks_->drain(2'000'000'000ull);
    checkpoint(BootClock::now_wall_ns(), true);
  }
  sinks_->stop();  // delivers what it can; network sinks keep the rest in their spools
  log::info("vigild stopping: {} events shipped", seq_);
  return 0;
}

}  // namespace vigil
