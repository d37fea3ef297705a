#include "agent/sinks/http_outputs.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "agent/vigild/version.h"
#include "base/clock.h"

namespace vigil::sinks {
namespace {

std::string snippet(std::string_view body) {
  std::string s;
  for (char c : body.substr(0, 200)) s += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

Result<HttpClient> make_client(const HttpSinkOptions& o, std::string_view what) {
  auto url = Url::parse(o.url);
  if (!url) return Error{fmt::format("{}: {}", what, url.error().message)};
  HttpClientOptions co;
  co.url = *url;
  co.timeout_ns = o.timeout_ns;
  co.headers = o.headers;
  co.server_name = o.tls.server_name;
  if (url->tls) {
    auto t = TlsContext::create(o.tls);
    if (!t) return Error{fmt::format("{} {}: {}", what, o.url, t.error().message)};
    co.tls = std::move(*t);
  } else if (!o.tls.ca_file.empty() || !o.tls.cert_file.empty()) {
    return Error{fmt::format("{} {}: ca/client_cert are set but the URL is not https://", what, o.url)};
  }
  return HttpClient(std::move(co));
}

// OTLP AnyValue of a JSON value (64-bit integers as strings, per the OTLP JSON encoding).
// Fields keep the event's order (ordered_json).
using Json = nlohmann::ordered_json;

Json any_value(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string: return {{"stringValue", v}};
    case Json::value_t::boolean: return {{"boolValue", v}};
    case Json::value_t::number_integer: return {{"intValue", std::to_string(v.get<int64_t>())}};
    case Json::value_t::number_unsigned: {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return {{"stringValue", std::to_string(u)}};
      return {{"intValue", std::to_string(u)}};
    }
    case Json::value_t::number_float: return {{"doubleValue", v}};
    case Json::value_t::array: {
      Json values = Json::array();
      for (const auto& e : v) values.push_back(any_value(e));
      return {{"arrayValue", {{"values", std::move(values)}}}};
    }
    case Json::value_t::object: {
      Json values = Json::array();
      for (const auto& [k, e] : v.items())
        if (!e.is_null()) values.push_back({{"key", k}, {"value", any_value(e)}});
      return {{"kvlistValue", {{"values", std::move(values)}}}};
    }
    default: return Json::object();  // null: an empty AnyValue
  }
}

// Event severity -> OTLP SeverityNumber: INFO 9, INFO2 10, WARN 13, ERROR 17, FATAL 21.
int otlp_severity(uint8_t s) {
  static constexpr int kMap[] = {9, 10, 13, 17, 21};
  return kMap[std::min<uint8_t>(s, 4)];
}

}  // namespace

std::string gzip_compress(std::string_view in) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Delivery delivery_of(const Result<HttpResponse>& r, size_t n, const Url& url) {
  Delivery d;
  if (!r) {
    d.error = r.error().message;
    return d;
  }
  int s = r->status;
  if (s >= 200 && s < 300) {
    d.delivered = n;
    return d;
  }
  std::string text = fmt::format("{} answered HTTP {}", url.text, s);
  if (std::string body = snippet(r->body); !body.empty()) text += ": " + body;
  if (s == 429 || s >= 500) {  // the receiver is busy or down: later, as it asks
    d.error = text;
    if (r->retry_after_s >= 0) d.retry_after_ns = static_cast<uint64_t>(r->retry_after_s) * 1'000'000'000ull;
    return d;
  }
  d.rejected = n;  // 1xx, 3xx, other 4xx: sending it again would not help
  d.reason = text;
  return d;
}

Result<std::unique_ptr<WebhookOutput>> WebhookOutput::create(HttpSinkOptions o) {
  auto c = make_client(o, "webhook");
  if (!c) return c.error();
  return std::unique_ptr<WebhookOutput>(new WebhookOutput(std::move(o), std::move(*c)));
}

Delivery WebhookOutput::deliver(std::span<const Record> batch) {
  body_.clear();
  if (!o_.json_lines) body_ += '[';
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i && !o_.json_lines) body_ += ',';
    body_ += batch[i].line;
    if (o_.json_lines) body_ += '\n';
  }
  if (!o_.json_lines) body_ += ']';
  std::string_view type = o_.json_lines ? "application/x-ndjson" : "application/json";
  auto r = o_.gzip ? client_.post(type, "gzip", gzip_compress(body_)) : client_.post(type, "", body_);
  return delivery_of(r, batch.size(), client_.url());
}

std::string otlp_logs_json(std::span<const Record> batch, const HttpSinkOptions& o, uint64_t observed_ns) {
  auto attr = [](std::string_view k, std::string_view v) {
    return Json{{"key", k}, {"value", {{"stringValue", v}}}};
  };
  Json resource = Json::array(
      {attr("service.name", "vigil"), attr("service.version", VIGIL_VERSION), attr("host.name", o.node)});
  if (!o.boot_id.empty()) resource.push_back(attr("service.instance.id", o.boot_id));
  if (!o.k8s_node.empty()) resource.push_back(attr("k8s.node.name", o.k8s_node));
  Json records = Json::array();
  std::string observed = std::to_string(observed_ns);
  for (const auto& r : batch) {
    Json attrs = Json::array();
    auto ev = Json::parse(r.line, nullptr, false);
    if (ev.is_object()) {
      for (const auto& [k, v] : ev.items())
        if (!v.is_null()) attrs.push_back({{"key", k}, {"value", any_value(v)}});
    } else {
      attrs.push_back(attr("event", r.line));  // not expected: the agent encodes every event as an object
    }
    records.push_back({{"timeUnixNano", std::to_string(r.time_ns)},
                       {"observedTimeUnixNano", observed},
                       {"severityNumber", otlp_severity(r.severity)},
                       {"severityText", severity_name(r.severity)},
                       {"body", {{"stringValue", event_kind_name(r.kind)}}},
                       {"attributes", std::move(attrs)}});
  }
  Json req = {
      {"resourceLogs",
       {{{"resource", {{"attributes", std::move(resource)}}},
         {"scopeLogs",
          {{{"scope", {{"name", "vigil"}, {"version", VIGIL_VERSION}}}, {"logRecords", std::move(records)}}}}}}}};
  return req.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::unique_ptr<OtlpOutput>> OtlpOutput::create(HttpSinkOptions o) {
  auto c = make_client(o, "otlp");
  if (!c) return c.error();
  return std::unique_ptr<OtlpOutput>(new OtlpOutput(std::move(o), std::move(*c)));
}

Delivery OtlpOutput::deliver(std::span<const Record> batch) {
  std::string body = otlp_logs_json(batch, o_, BootClock::now_wall_ns());
  auto r = o_.gzip ? client_.post("application/json", "gzip", gzip_compress(body))
                   : client_.post("application/json", "", body);
  Delivery d = delivery_of(r, batch.size(), client_.url());
  if (d.delivered != batch.size() || !r->body.size()) return d;
  // partialSuccess: the receiver took the request but refused some records for good.
  auto resp = nlohmann::json::parse(r->body, nullptr, false);
  if (!resp.is_object() || !resp.contains("partialSuccess")) return d;
  const auto& ps = resp["partialSuccess"];
  uint64_t rejected = 0;
  if (auto it = ps.find("rejectedLogRecords"); it != ps.end()) {
    if (it->is_string()) rejected = std::strtoull(it->get<std::string>().c_str(), nullptr, 10);
    else if (it->is_number_unsigned() || it->is_number_integer()) rejected = it->get<uint64_t>();
  }
  if (rejected == 0) return d;
  rejected = std::min<uint64_t>(rejected, batch.size());
  d.delivered = batch.size() - rejected;
  d.rejected = rejected;
  d.reason = fmt::format("{} rejected {} log records (partial success)", client_.url().text, rejected);
  if (auto it = ps.find("errorMessage"); it != ps.end() && it->is_string() && !it->get<std::string>().empty())
    d.reason += ": " + snippet(it->get<std::string>());
  return d;
}

}  // namespace vigil::sinks
