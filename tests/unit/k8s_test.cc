// agent/k8s: Pod objects of the API (the fixtures in tests/e2e/fixtures/k8s), the
// owning workload from ownerReferences, and the cache's lookups and bounds.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/k8s/pods.h"
#include "agent/k8s/watcher.h"
#include "policy/selector.h"

namespace vigil::k8s {
namespace {

nlohmann::json fixture(const std::string& name) {
  std::ifstream f(std::string(VIGIL_K8S_FIXTURES) + "/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

std::vector<Pod> pods_of(const std::string& name) {
  std::vector<Pod> out;
  const nlohmann::json list = fixture(name);
  for (const auto& item : list["items"]) out.push_back(*parse_pod(item));
  return out;
}

const Pod& by_name(const std::vector<Pod>& pods, const std::string& name) {
  for (const auto& p : pods)
    if (p.name == name) return p;
  throw std::runtime_error("no pod " + name);
}

TEST(K8sPods, ParsesTheApiServersPodObjects) {
  auto pods = pods_of("list-page1.json");
  auto page2 = pods_of("list-page2.json");
  pods.insert(pods.end(), page2.begin(), page2.end());
  ASSERT_EQ(pods.size(), 4u);
  const Pod& web = by_name(pods, "web-5d8f7c9b7-xk2p9");
  EXPECT_EQ(web.uid, "8f1c2e4a-6b3d-4c5e-9a7f-1d2e3f4a5b6c");
  EXPECT_EQ(web.ns, "shop");
  EXPECT_EQ(web.node, "node-a");
  EXPECT_EQ(web.phase, "Running");
  EXPECT_EQ(web.resource_version, "48100");
  ASSERT_EQ(web.containers.size(), 1u);
  EXPECT_EQ(web.containers[0].first.size(), 64u);  // containerd:// stripped
  EXPECT_EQ(web.containers[0].second, "web");
  EXPECT_EQ((Labels{{"app", "web"}, {"pod-template-hash", "5d8f7c9b7"}, {"tier", "frontend"}}), web.labels);

  EXPECT_EQ((Workload{"Deployment", "web"}), web.workload);
  EXPECT_EQ((Workload{"StatefulSet", "cart"}), by_name(pods, "cart-0").workload);
  EXPECT_EQ((Workload{"DaemonSet", "vigil"}), by_name(pods, "vigil-x7k2m").workload);
  EXPECT_EQ((Workload{"CronJob", "backup"}), by_name(pods, "backup-29412345-q7w2e").workload);
  EXPECT_EQ(by_name(pods, "backup-29412345-q7w2e").phase, "Succeeded");
}

TEST(K8sPods, WorkloadEdgeCases) {
  Labels no_hash;
  auto md = [](const std::string& refs) {
    return nlohmann::json::parse(R"({"name":"p-1","ownerReferences":)" + refs + "}");
  };
  // A ReplicaSet without the Deployment's hash label is its own workload.
  EXPECT_EQ((Workload{"ReplicaSet", "rs-abc"}),
            owner_workload(md(R"([{"kind":"ReplicaSet","name":"rs-abc","controller":true}])"), no_hash));
  // Only the controller reference counts.
  EXPECT_EQ((Workload{"StatefulSet", "db"}),
            owner_workload(md(R"([{"kind":"Node","name":"n1"},{"kind":"StatefulSet","name":"db","controller":true}])"),
                           no_hash));
  // A Job not named <cronjob>-<digits> stays a Job; a bare pod is its own workload.
  EXPECT_EQ((Workload{"Job", "migrate"}), owner_workload(md(R"([{"kind":"Job","name":"migrate","controller":true}])"), no_hash));
  EXPECT_EQ((Workload{"Pod", "p-1"}), owner_workload(md("[]"), no_hash));
  EXPECT_EQ((Workload{"Pod", "p-1"}), owner_workload(md(R"("not a list")"), no_hash));
}

TEST(K8sPods, RefusesObjectsWithoutIdentity) {
  EXPECT_FALSE(parse_pod(nlohmann::json::parse(R"({"metadata":{"name":"x"}})")));
  EXPECT_FALSE(parse_pod(nlohmann::json::parse(R"({"spec":{}})")));
  EXPECT_FALSE(parse_pod(nlohmann::json::parse(R"([1,2])")));
  // The bookmark's object has a resourceVersion and nothing else.
  std::ifstream f(std::string(VIGIL_K8S_FIXTURES) + "/watch-1.jsonl");
  std::string line;
  int bookmarks = 0;
  while (std::getline(f, line)) {
    auto ev = nlohmann::json::parse(line);
    if (ev["type"] == "BOOKMARK") {
      ++bookmarks;
      EXPECT_FALSE(parse_pod(ev["object"]));
    }
  }
  EXPECT_EQ(bookmarks, 1);
}

TEST(K8sPods, CacheLooksUpByPodAndContainerAndSelects) {
  PodCache cache({"app", "tier", "version"}, 100);
  auto pods = pods_of("list-after-410.json");
  cache.replace(pods);
  EXPECT_EQ(cache.size(), 5u);
  const Pod& cart = by_name(pods, "cart-0");
  auto v = cache.lookup(cart.uid, cart.containers[0].first);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->ns, "shop");
  EXPECT_EQ(v->pod, "cart-0");
  EXPECT_EQ(v->container, "cart");
  EXPECT_EQ((Labels{{"app", "cart"}, {"version", "v2"}}), v->labels);  // the configured subset only
  // By container id alone (a runtime layout whose cgroup path names no pod).
  auto by_container = cache.lookup("", cart.containers[0].first);
  ASSERT_TRUE(by_container);
  EXPECT_EQ(by_container->pod, "cart-0");
  EXPECT_FALSE(cache.lookup("00000000-0000-0000-0000-000000000000", ""));

  // As the policy service asks: a pod selector's namespace and labels.
  auto select = [&](std::string ns, Labels match) {
    policy::PodSelector ps{std::move(ns), std::move(match)};
    return cache.uids_where([&](const Pod& p) { return policy::pod_matches(ps, p.ns, p.labels); });
  };
  EXPECT_EQ(select("shop", {{"app", "api"}}).size(), 2u);
  EXPECT_EQ(select("", {{"tier", "backend"}}).size(), 2u);
  EXPECT_EQ(select("other", {{"app", "api"}}).size(), 0u);
  EXPECT_EQ(select("shop", {}).size(), 3u);

  uint64_t g = cache.generation();
  cache.remove(cart.uid);
  EXPECT_GT(cache.generation(), g);
  EXPECT_FALSE(cache.lookup(cart.uid, ""));
  EXPECT_FALSE(cache.lookup("", cart.containers[0].first));  // its container index went with it
  cache.remove(cart.uid);  // twice: nothing
  EXPECT_EQ(cache.size(), 4u);
}

TEST(K8sPods, CacheIsBounded) {
  PodCache cache({}, 2);
  auto pods = pods_of("list-after-410.json");
  cache.replace(pods);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.dropped(), 3u);
  Pod p = pods[0];
  p.uid = "11111111-2222-4333-8444-555555555555";
  cache.upsert(p);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.dropped(), 4u);
}

TEST(K8sPods, UrlEncodingOfSelectors) {
  EXPECT_EQ(url_encode("spec.nodeName=node-a"), "spec.nodeName%3Dnode-a");
  EXPECT_EQ(url_encode("a b/c?"), "a%20b%2Fc%3F");
}

// Security review F16: wrongly typed fields threw nlohmann's type_error out of
// the watcher thread (std::terminate). Each is a field not there now.
TEST(SecurityF16, WronglyTypedRepliesAreFieldsNotThere) {
  auto owner = decode_watch_line(
      R"({"type":"ADDED","object":{"metadata":{"uid":"u1","name":"p","ownerReferences":[{"controller":"yes","kind":"ReplicaSet","name":"x"}]}}})");
  ASSERT_EQ(owner.kind, WatchLine::kAdded);
  ASSERT_TRUE(owner.pod);
  EXPECT_EQ(owner.pod->workload, (Workload{"Pod", "p"}));  // "yes" is not a controller: true
  auto rv = decode_watch_line(R"({"type":"MODIFIED","object":{"metadata":{"uid":"u1","name":"p","resourceVersion":12345}}})");
  ASSERT_EQ(rv.kind, WatchLine::kModified);
  EXPECT_EQ(rv.resource_version, "");
  auto err = decode_watch_line(R"({"type":"ERROR","object":{"code":"410","message":"gone"}})");
  ASSERT_EQ(err.kind, WatchLine::kError);
  EXPECT_EQ(err.code, 0);
  EXPECT_EQ(err.message, "gone");
  EXPECT_EQ(decode_watch_line("[1,2]").kind, WatchLine::kInvalid);
  EXPECT_EQ(decode_watch_line(R"({"type":7,"object":{}})").kind, WatchLine::kInvalid);
  auto page = decode_list_page(R"({"items":[{"metadata":{"uid":"a","name":"a"}},5],"metadata":{"continue":9,"resourceVersion":[]}})");
  EXPECT_TRUE(page.ok);
  EXPECT_EQ(page.pods.size(), 1u);
  EXPECT_EQ(page.bad, 1u);
  EXPECT_EQ(page.cont, "");
  EXPECT_FALSE(decode_list_page(R"({"items":{}})").ok);
}

}  // namespace
}  // namespace vigil::k8s
