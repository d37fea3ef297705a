// Micro-benchmarks of the per-event user-space path (Google Benchmark):
// HTTP/1.x parsing + pairing against libhttp-parser (the maintained Debian
// parser we chose not to use), and event encoding against nlohmann::json.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <http_parser.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "agent/events/api_call.h"
#include "agent/events/events.h"
#include "collectors/protocols/http1/parser.h"
#include "collectors/protocols/http1/tracker.h"

namespace {

// A keep-alive session shaped like real API traffic: requests with the headers
// curl and browsers send, responses as nginx writes them (fixed-length and chunked).
struct Corpus {
  std::vector<std::string> requests, responses;
};

const Corpus& corpus() {
  static const Corpus c = [] {
    Corpus c;
    for (int i = 0; i < 256; ++i) {
      std::string path = "/api/v1/users/" + std::to_string(1000 + i) + "/orders?page=" + std::to_string(i % 7);
      c.requests.push_back(
          (i % 5 == 0 ? "POST " : "GET ") + path +
          " HTTP/1.1\r\nHost: api.internal.example:8443\r\nUser-Agent: curl/7.88.1\r\n"
          "Accept: application/json\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig\r\n"
          "X-Request-Id: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\r\n" +
          (i % 5 == 0 ? "Content-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"item\":42,\"qty\":1,\"x\":\"y\"}"
                      : "\r\n"));
      std::string body(200 + (i * 37) % 1800, 'x');
      if (i % 4 == 3) {
        c.responses.push_back("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 22:00:00 GMT\r\n"
                              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                              "Connection: keep-alive\r\n\r\n" +
                              fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", body.size(), body));
      } else {
        c.responses.push_back(fmt::format(
            "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 22:00:00 GMT\r\n"
            "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n"
            "Set-Cookie: sid=abc; HttpOnly\r\n\r\n{}",
            body.size(), body));
      }
    }
    return c;
  }();
  return c;
}

// Our parser + reassembly + pairing, as the agent runs it (client side).
void BM_Http1TrackerParseAndPair(benchmark::State& state) {
  const Corpus& c = corpus();
  uint64_t messages = 0;
  for (auto _ : state) {
    vigil::http1::Tracker t(true);
    uint64_t tx = 0, rx = 0, ts = 0;
    for (size_t i = 0; i < c.requests.size(); ++i) {
      t.on_data(true, tx, c.requests[i].size(), c.requests[i], ++ts);
      tx += c.requests[i].size();
      t.on_data(false, rx, c.responses[i].size(), c.responses[i], ++ts);
      rx += c.responses[i].size();
    }
    messages += 2 * t.exchanges().size();
    benchmark::DoNotOptimize(t.exchanges().data());
  }
  state.counters["messages/s"] = benchmark::Counter(static_cast<double>(messages), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Http1TrackerParseAndPair);

// Parsing alone, ours vs libhttp-parser, over the same bytes.
void BM_Http1StreamParserOnly(benchmark::State& state) {
  const Corpus& c = corpus();
  uint64_t messages = 0;
  for (auto _ : state) {
    vigil::http1::StreamParser req(vigil::http1::Kind::kRequest), resp(vigil::http1::Kind::kResponse);
    for (size_t i = 0; i < c.requests.size(); ++i) {
      req.feed(c.requests[i], i);
      resp.feed(c.responses[i], i);
    }
    messages += req.messages().size() + resp.messages().size();
  }
  state.counters["messages/s"] = benchmark::Counter(static_cast<double>(messages), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Http1StreamParserOnly);

struct LibCtx {
  uint64_t messages = 0;
  std::string url, field;  // what an api_call needs copied out, as ours does
  std::vector<std::pair<std::string, std::string>> headers;
};

void BM_LibHttpParser(benchmark::State& state) {
  const Corpus& c = corpus();
  http_parser_settings s{};
  s.on_url = [](http_parser* p, const char* at, size_t n) {
    static_cast<LibCtx*>(p->data)->url.assign(at, n);
    return 0;
  };
  s.on_header_field = [](http_parser* p, const char* at, size_t n) {
    auto* x = static_cast<LibCtx*>(p->data);
    x->headers.emplace_back(std::string(at, n), std::string());
    return 0;
  };
  s.on_header_value = [](http_parser* p, const char* at, size_t n) {
    static_cast<LibCtx*>(p->data)->headers.back().second.assign(at, n);
    return 0;
  };
  s.on_message_complete = [](http_parser* p) {
    auto* x = static_cast<LibCtx*>(p->data);
    ++x->messages;
    x->headers.clear();
    return 0;
  };
  LibCtx ctx;
  for (auto _ : state) {
    http_parser req, resp;
    http_parser_init(&req, HTTP_REQUEST);
    http_parser_init(&resp, HTTP_RESPONSE);
    req.data = resp.data = &ctx;
    for (size_t i = 0; i < c.requests.size(); ++i) {
      http_parser_execute(&req, &s, c.requests[i].data(), c.requests[i].size());
      http_parser_execute(&resp, &s, c.responses[i].data(), c.responses[i].size());
    }
  }
  state.counters["messages/s"] = benchmark::Counter(static_cast<double>(ctx.messages), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LibHttpParser);

vigil::Event sample_event() {
  vigil::http1::Tracker t(true);
  const Corpus& c = corpus();
  t.on_data(true, 0, c.requests[0].size(), c.requests[0], 1);
  t.on_data(false, 0, c.responses[0].size(), c.responses[0], 2);
  vigil::ConnRef conn{7, "tcp", "ipv4", "client", {"127.0.0.1", 40000}, {"127.0.0.2", 8443}};
  vigil::encode_conn_ref(conn);  // as the agent does, once per connection
  vigil::Event e;
  e.time_ns = 1795336200123456789ull;
  e.node = "host-1";
  e.seq = 42;
  e.process = std::make_shared<const vigil::ProcessRef>(vigil::ProcessRef{1234, 1234, 1, 0, "curl", "/usr/bin/curl", "/system.slice/x.service", "", ""});
  e.body = vigil::make_api_call(t.exchanges().at(0), conn, {});
  return e;
}

// An exchange into its api_call: target split, header, query and path redaction
// (the security review's wider credential list and path tokens run here, per call).
void BM_MakeApiCall(benchmark::State& state) {
  vigil::http1::Tracker t(true);
  const Corpus& c = corpus();
  t.on_data(true, 0, c.requests[0].size(), c.requests[0], 1);
  t.on_data(false, 0, c.responses[0].size(), c.responses[0], 2);
  const vigil::protocols::Exchange& x = t.exchanges().at(0);
  vigil::ConnRef conn{7, "tcp", "ipv4", "client", {"127.0.0.1", 40000}, {"127.0.0.2", 8443}};
  for (auto _ : state) {
    vigil::ApiCallEvent a = vigil::make_api_call(x, conn, {});
    benchmark::DoNotOptimize(a.request.path.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MakeApiCall);

void BM_EncodeApiCallWriter(benchmark::State& state) {
  vigil::Event e = sample_event();
  std::string out;
  for (auto _ : state) {
    vigil::encode_json(e, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeApiCallWriter);

// The same document built as an nlohmann tree and dumped (what the agent did first).
void BM_EncodeApiCallNlohmann(benchmark::State& state) {
  vigil::Event e = sample_event();
  const auto& a = std::get<vigil::ApiCallEvent>(e.body);
  for (auto _ : state) {
    nlohmann::ordered_json j{{"v", 1}, {"time", vigil::format_rfc3339_ns(e.time_ns)}, {"node", e.node},
                             {"kind", "api_call"}, {"seq", e.seq}};
    j["process"] = {{"pid", e.process->pid}, {"tid", e.process->tid}, {"ppid", e.process->ppid},
                    {"uid", e.process->uid}, {"comm", e.process->comm}, {"exe", e.process->exe},
                    {"cgroup", e.process->cgroup}};
    j["conn"] = {{"id", a.conn.id}, {"proto", a.conn.proto}, {"family", a.conn.family}, {"role", a.conn.role},
                 {"local", {{"addr", a.conn.local.addr}, {"port", a.conn.local.port}}},
                 {"remote", {{"addr", a.conn.remote.addr}, {"port", a.conn.remote.port}}}};
    j["role"] = a.role;
    j["tls"] = a.tls;
    j["protocol"] = a.protocol;
    nlohmann::ordered_json req{{"method", a.request.method}, {"host", a.request.host}, {"path", a.request.path}};
    if (a.request.query) req["query"] = *a.request.query;
    for (const auto& [k, v] : a.request.headers) req["headers"][k] = v;
    j["request"] = std::move(req);
    nlohmann::ordered_json resp{{"status", a.response.status}};
    for (const auto& [k, v] : a.response.headers) resp["headers"][k] = v;
    j["response"] = std::move(resp);
    j["endpoint"] = a.endpoint;
    j["latency_ns"] = a.latency_ns;
    j["req_bytes"] = a.req_bytes;
    j["resp_bytes"] = a.resp_bytes;
    j["truncated"] = a.truncated;
    j["sensitive"] = a.sensitive;
    std::string out = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeApiCallNlohmann);

}  // namespace

BENCHMARK_MAIN();
