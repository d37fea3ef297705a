// The HTTP sinks: `webhook` (batched JSON POSTs) and `otlp` (OTLP/HTTP logs in
// the JSON encoding). A 2xx acks the batch; 429 and 5xx are retried with backoff,
// honouring Retry-After; any other status drops the batch, counted with the reason.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/sinks/http_client.h"
#include "agent/sinks/worker.h"

namespace vigil::sinks {

struct HttpSinkOptions {
  std::string url;
  TlsOptions tls;  // used for https:// URLs
  uint64_t timeout_ns = 10'000'000'000;
  std::vector<std::pair<std::string, std::string>> headers;
  bool gzip = false;
  bool json_lines = false;  // webhook: JSON lines instead of a JSON array
  // otlp: resource attributes.
  std::string node, boot_id, k8s_node;
};

// What a response means for a batch of n records (shared by both sinks).
Delivery delivery_of(const Result<HttpResponse>& r, size_t n, const Url& url);

// gzip (RFC 1952) of `in`.
std::string gzip_compress(std::string_view in);

class WebhookOutput final : public Output {
 public:
  static Result<std::unique_ptr<WebhookOutput>> create(HttpSinkOptions o);
  std::string describe() const override { return "webhook " + client_.url().text; }
  Delivery deliver(std::span<const Record> batch) override;

 private:
  WebhookOutput(HttpSinkOptions o, HttpClient c) : o_(std::move(o)), client_(std::move(c)) {}
  HttpSinkOptions o_;
  HttpClient client_;
  std::string body_;
};

// One OTLP ExportLogsServiceRequest (JSON encoding: lowerCamelCase names, integer
// enums, 64-bit integers as strings): every record a LogRecord, its event fields as attributes.
std::string otlp_logs_json(std::span<const Record> batch, const HttpSinkOptions& o, uint64_t observed_ns);

class OtlpOutput final : public Output {
 public:
  static Result<std::unique_ptr<OtlpOutput>> create(HttpSinkOptions o);
  std::string describe() const override { return "otlp " + client_.url().text; }
  Delivery deliver(std::span<const Record> batch) override;

 private:
  OtlpOutput(HttpSinkOptions o, HttpClient c) : o_(std::move(o)), client_(std::move(c)) {}
  HttpSinkOptions o_;
  HttpClient client_;
};

}  // namespace vigil::sinks
