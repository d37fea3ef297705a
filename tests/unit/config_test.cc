#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "agent/config/config.h"

namespace vigil {
namespace {

TEST(Config, EmbeddedDefaultParsesToTheDocumentedDefaults) {
  auto c = parse_config(default_config_yaml(), "<default>");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->data_dir, "/var/lib/vigil");
  EXPECT_EQ(c->control_socket, "/run/vigil/vigil.sock");
  EXPECT_TRUE(c->capture.http);
  EXPECT_EQ(c->capture.max_capture_bytes, 16384u);
  EXPECT_FALSE(c->capture.bodies);
  EXPECT_EQ(c->events.kinds, all_event_kinds());
  ASSERT_EQ(c->events.sinks.size(), 2u);
  EXPECT_EQ(c->events.sinks[0].type, "stdout");
  EXPECT_EQ(c->events.sinks[1].type, "file");
  EXPECT_EQ(c->events.sinks[1].path, "/var/log/vigil/events.jsonl");
  EXPECT_EQ(c->metrics.listen, "127.0.0.1:9464");
  EXPECT_EQ(c->policies.dir, "/etc/vigil/policies.d");
}

TEST(Config, EmptyFileMeansAllDefaults) {
  auto c = parse_config("", "empty.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->events.sinks.size(), 2u);
  EXPECT_EQ(c->events.kinds.size(), 8u);  // DESIGN.md §4 kinds, checkpoint included
}

TEST(Config, OverridesOnlyWhatIsGiven) {
  auto c = parse_config(R"(
node_name: edge-1
capture:
  max_capture_bytes: 4096
  exclude_comms: [sshd, chronyd]
events:
  kinds: [connection, lost]
  sinks:
    - type: file
      path: /tmp/x.jsonl
)", "x.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->node_name, "edge-1");
  EXPECT_EQ(c->capture.max_capture_bytes, 4096u);
  EXPECT_TRUE(c->capture.tls);
  EXPECT_EQ(c->capture.exclude_comms, (std::vector<std::string>{"sshd", "chronyd"}));
  EXPECT_TRUE(c->kind_enabled("connection"));
  EXPECT_FALSE(c->kind_enabled("api_call"));
  ASSERT_EQ(c->events.sinks.size(), 1u);
  EXPECT_EQ(c->events.sinks[0].path, "/tmp/x.jsonl");
}

TEST(Config, HttpSinksTakeTlsHeadersAndFormats) {
  auto c = parse_config(R"(
events:
  sinks:
    - type: webhook
      url: https://siem.example/ingest
      format: jsonl
      gzip: true
      ca: /etc/vigil/ca.pem
      client_cert: /etc/vigil/agent.pem
      client_key: /etc/vigil/agent.key
      server_name: siem.internal
      timeout_ms: 3000
      headers: {Authorization: "Bearer abc", X-Tenant: blue}
    - {type: otlp, endpoint: "http://127.0.0.1:4318"}
)", "x.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const auto& w = c->events.sinks[0];
  EXPECT_EQ(w.name, "webhook");
  EXPECT_EQ(w.format, "jsonl");
  EXPECT_TRUE(w.gzip);
  EXPECT_EQ(w.client_key, "/etc/vigil/agent.key");
  EXPECT_EQ(w.server_name, "siem.internal");
  EXPECT_EQ(w.timeout_ms, 3000u);
  ASSERT_EQ(w.headers.size(), 2u);
  EXPECT_EQ(w.headers[0], (std::pair<std::string, std::string>{"Authorization", "Bearer abc"}));
  EXPECT_EQ(c->events.sinks[1].endpoint, "http://127.0.0.1:4318");
  EXPECT_EQ(c->events.sinks[1].name, "otlp");
}

struct BadCase {
  const char* name;
  std::string yaml;
  const char* expected;  // substring of the error, which always starts with file:line:col
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, IsRejectedWithKeyFileLineAndColumn) {
  auto c = parse_config(GetParam().yaml, "bad.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(GetParam().expected), std::string::npos)
      << "got: " << c.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfig,
    ::testing::Values(
        BadCase{"TypoTopLevel", "node_name: a\ncaptur:\n  http: true\n",
                "bad.yaml:2:1: unknown key 'captur' (did you mean 'capture'?)"},
        BadCase{"TypoNested", "capture:\n  htp: false\n",
                "bad.yaml:2:3: unknown key 'capture.htp' (did you mean 'http'?)"},
        BadCase{"UnknownFar", "zzzzzzzz: 1\n", "bad.yaml:1:1: unknown key 'zzzzzzzz' (expected one of:"},
        BadCase{"KubernetesEnabled", "kubernetes:\n  enabled: sometimes\n",
                "bad.yaml:2:12: 'kubernetes.enabled' is 'sometimes'; expected auto, true or false"},
        BadCase{"KubernetesUrl", "kubernetes:\n  api_server: 10.0.0.1:6443\n",
                "'kubernetes.api_server' '10.0.0.1:6443' must be an https:// (or http://) URL"},
        BadCase{"KubernetesMaxPods", "kubernetes:\n  max_pods: 0\n", "'kubernetes.max_pods' must be at least 1"},
        // Security review F20: the service account token in clear.
        BadCase{"SecurityF20KubernetesPlainHttp", "kubernetes:\n  api_server: http://10.0.0.1:6443\n",
                "'kubernetes.api_server' 'http://10.0.0.1:6443' is http://"},
        BadCase{"WrongBool", "capture:\n  http: maybe\n",
                "bad.yaml:2:9: 'capture.http' must be true or false"},
        BadCase{"NegativeInt", "capture:\n  max_capture_bytes: -1\n",
                "bad.yaml:2:22: 'capture.max_capture_bytes' must be a non-negative integer"},
        BadCase{"IntOutOfRange", "capture:\n  max_capture_bytes: 99999999\n",
                "'capture.max_capture_bytes' must be between 1 and 16384"},
        BadCase{"StringForList", "capture:\n  exclude_comms: sshd\n",
                "bad.yaml:2:18: 'capture.exclude_comms' must be a list of strings"},
        BadCase{"MapForString", "data_dir: {a: 1}\n", "bad.yaml:1:11: 'data_dir' must be a string"},
        BadCase{"SectionNotMap", "capture: 5\n", "bad.yaml:1:10: 'capture' must be a mapping"},
        BadCase{"TopNotMap", "- a\n- b\n", "bad.yaml:1:1: '<top>' must be a mapping"},
        BadCase{"UnknownKind", "events:\n  kinds: [connection, apicall]\n",
                "bad.yaml:2:23: 'events.kinds' has unknown kind 'apicall'"},
        BadCase{"SinkWithoutType", "events:\n  sinks:\n    - path: /x\n",
                "'events.sinks[0].type' is required"},
        BadCase{"SinkBadType", "events:\n  sinks:\n    - type: kafka\n",
                "bad.yaml:3:13: 'events.sinks[0].type' is 'kafka'"},
        BadCase{"FileSinkNoPath", "events:\n  sinks:\n    - type: file\n",
                "'events.sinks[0].path' is required for a file sink"},
        BadCase{"SinkUnknownKey", "events:\n  sinks:\n    - type: file\n      pth: /x\n",
                "bad.yaml:4:7: unknown key 'events.sinks[0].pth' (did you mean 'path'?)"},
        BadCase{"SyslogNoAddress", "events:\n  sinks:\n    - type: syslog\n",
                "'events.sinks[0].address' is required for a syslog sink"},
        BadCase{"SinkBadSeverity", "events:\n  sinks:\n    - type: stdout\n      min_severity: urgent\n",
                "bad.yaml:4:21: 'events.sinks[0].min_severity' is 'urgent'"},
        BadCase{"SinkUnknownKindFilter", "events:\n  sinks:\n    - type: stdout\n      kinds: [egress, dns]\n",
                "bad.yaml:4:23: 'events.sinks[0].kinds' has unknown kind 'dns'"},
        BadCase{"SinkNamesCollide",
                "events:\n  sinks:\n    - {type: syslog, address: 'udp://127.0.0.1:1', name: s}\n"
                "    - {type: syslog, address: 'udp://127.0.0.1:2', name: s}\n",
                "a second sink named 's'"},
        BadCase{"WebhookNoUrl", "events:\n  sinks:\n    - type: webhook\n",
                "'events.sinks[0].url' is required for a webhook sink"},
        BadCase{"OtlpBothUrlAndEndpoint",
                "events:\n  sinks:\n    - {type: otlp, url: 'http://a/v1/logs', endpoint: 'http://a'}\n",
                "an otlp sink takes either 'endpoint'"},
        BadCase{"WebhookBadFormat", "events:\n  sinks:\n    - {type: webhook, url: 'http://a', format: xml}\n",
                "'events.sinks[0].format' is 'xml'; expected json or jsonl"},
        BadCase{"FileBadCompress", "events:\n  sinks:\n    - {type: file, path: /tmp/e.jsonl, compress: gzip}\n",
                "'events.sinks[0].compress' is 'gzip'; expected none or zstd"},
        BadCase{"CertWithoutKey", "events:\n  sinks:\n    - {type: webhook, url: 'https://a', client_cert: /c}\n",
                "client_cert and client_key go together"},
        BadCase{"HeaderInjection",
                "events:\n  sinks:\n    - type: webhook\n      url: 'http://a'\n      headers: {X-A: \"1\\r\\nX-B: 2\"}\n",
                "'events.sinks[0].headers.X-A' holds a line break"},
        BadCase{"HeaderTheSinkSets",
                "events:\n  sinks:\n    - type: webhook\n      url: 'http://a'\n      headers: {Content-Length: '5'}\n",
                "'events.sinks[0].headers.Content-Length' is set by the sink itself"},
        BadCase{"HeaderBadName",
                "events:\n  sinks:\n    - type: webhook\n      url: 'http://a'\n      headers: {'X A': '5'}\n",
                "'X A' is not an HTTP header name"},
        BadCase{"SinkBadName", "events:\n  sinks:\n    - {type: stdout, name: ../x}\n",
                "'events.sinks[0].name' '../x' may hold only"},
        BadCase{"SyntaxError", "capture: [unclosed\n", "bad.yaml:"},
        BadCase{"ControlCharacter", std::string("node_name: a\nx\0y: 1\n", 19),
                "bad.yaml:2:2: control character 0x00 is not allowed in YAML"},
        BadCase{"StrayCommaIsNotSilentlyDropped", ",\nnode_name: a\n", "bad.yaml:1:1: unexpected character"},
        BadCase{"TwoDocuments", "node_name: a\n---\nnode_name: b\n", "has 2 YAML documents"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Config, LoadFileNamesTheFile) {
  std::string path = ::testing::TempDir() + "/vigil_cfg_test.yaml";
  {
    std::ofstream out(path);
    out << "metrics:\n  listn: 1\n";
  }
  auto c = load_config_file(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message.rfind(path + ":2:3: unknown key 'metrics.listn'", 0), 0u)
      << c.error().message;
  std::remove(path.c_str());
}

TEST(Config, MissingFileIsAClearError) {
  auto c = load_config_file("/nonexistent/vigil.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("read config file /nonexistent/vigil.yaml: ENOENT"),
            std::string::npos)
      << c.error().message;
}

}  // namespace
}  // namespace vigil
