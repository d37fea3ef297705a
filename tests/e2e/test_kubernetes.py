"""E2E (issue 12): the Kustomize base and its overlays (packaging/kubernetes/). Rendered
with `kubectl kustomize`; every object validated against the Kubernetes API schemas with
kubernetes-models from npm (tests/e2e/tools/k8s_validate.js); the DaemonSet's
capabilities equal the systemd unit's bounding set; its ConfigMap's vigil.yaml passes
`vigild --check-config`; probes, ports, mounts and the downward API agree with the
configuration."""
import json
import os
import subprocess
import tempfile
import unittest

import k8s_manifests as k8s
from vigil_e2e import REQUIRE_BPF, VIGILD

NPM_MODULES = os.path.join(os.path.dirname(os.environ.get("VIGIL_BIN_DIR", "../../build/bin")), "npm/node_modules")
VALIDATE = os.path.join(os.path.dirname(__file__), "tools/k8s_validate.js")
VARIANTS = ["base", "servicemonitor", "otlp", "seccomp-localhost"]
HOST_PATHS = {"/sys/fs/bpf", "/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup", "/var/lib/vigil",
              "/var/log/vigil", "/run/vigil"}


class Kustomize(unittest.TestCase):
    def setUp(self):
        missing = None
        if not k8s.kubectl():
            missing = "kubectl is not installed (scripts/install-deps.sh installs kubernetes-client)"
        elif not os.path.exists(os.path.join(NPM_MODULES, "kubernetes-models/apps/v1/DaemonSet.js")):
            missing = f"kubernetes-models is not installed under {NPM_MODULES} (scripts/install-validators.sh)"
        if missing:
            if REQUIRE_BPF:
                self.fail(missing)
            self.skipTest(missing)

    def validate(self, objects):
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(objects, f)
            f.flush()
            r = subprocess.run(["node", VALIDATE, f.name], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "VIGIL_NPM_MODULES": NPM_MODULES})
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def check_config(self, configmap):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(configmap["data"]["vigil.yaml"])
            f.flush()
            r = subprocess.run([VIGILD, "--check-config", "--config", f.name], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return configmap["data"]["vigil.yaml"]

    def test_every_object_of_base_and_overlays_validates(self):
        for variant in VARIANTS:
            with self.subTest(variant=variant):
                objects = k8s.render(variant)
                out = self.validate(objects)
                self.assertEqual(out["errors"], [])
                self.assertEqual(len(out["validated"]), len(objects))
                kinds = sorted(o["kind"] for o in objects)
                expected = ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "ConfigMap", "DaemonSet", "Namespace",
                            "Service", "ServiceAccount"]
                if variant == "servicemonitor":
                    expected = sorted(expected + ["ServiceMonitor"])
                self.assertEqual(kinds, expected)
                for o in objects:
                    if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
                        self.assertEqual(o["metadata"].get("namespace"), "vigil", o["metadata"]["name"])

    def test_daemonset_grants_what_the_unit_grants(self):
        objects = k8s.render()
        ds = k8s.one(objects, "DaemonSet")
        pod = ds["spec"]["template"]["spec"]
        c = k8s.agent_container(objects)
        sc = c["securityContext"]
        self.assertEqual(sorted(sc["capabilities"]["add"]), k8s.unit_capabilities())
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertIs(sc["privileged"], False)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertEqual(sc["seccompProfile"], {"type": "RuntimeDefault"})
        self.assertIn("appArmorProfile", sc)
        self.assertIs(pod["hostPID"], True)
        self.assertNotIn("hostNetwork", pod)
        self.assertEqual(pod["tolerations"], [{"operator": "Exists"}])
        self.assertEqual(set(c["resources"]), {"requests", "limits"})
        # The image reference the images: transformer made.
        self.assertEqual(c["image"], "localhost/vigil:0.1.0")

        # Mounts: each hostPath the issue names (the node's /proc comes with hostPID).
        volumes = {v["name"]: v for v in pod["volumes"]}
        host = {v["hostPath"]["path"] for v in volumes.values() if "hostPath" in v}
        self.assertEqual(host, HOST_PATHS)
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        self.assertEqual(set(mounts), set(volumes))
        for name, v in volumes.items():
            if "hostPath" in v and v["hostPath"]["path"].startswith("/sys/"):
                self.assertEqual(mounts[name]["mountPath"], v["hostPath"]["path"], name)
        bpffs = next(m for n, m in mounts.items() if volumes[n].get("hostPath", {}).get("path") == "/sys/fs/bpf")
        self.assertEqual(bpffs.get("mountPropagation"), "HostToContainer")  # Bidirectional needs privileged

        # The configuration: valid, its paths the mounts, its metrics port the probes'.
        config = k8s.one(objects, "ConfigMap", "vigil-config")
        self.assertEqual(volumes["config"]["configMap"]["name"], config["metadata"]["name"])
        text = self.check_config(config)
        self.assertEqual(c["args"], ["--config", mounts["config"]["mountPath"] + "/vigil.yaml"])
        self.assertIn(f"  dir: {mounts['policies']['mountPath']}\n", text)
        self.assertIn("listen: 0.0.0.0:9464", text)
        self.assertEqual(c["ports"], [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}])
        self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "metrics"})
        self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "metrics"})
        env = {e["name"]: e for e in c["env"]}
        self.assertEqual(env["VIGIL_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName")

        # RBAC: read pods, nothing else; bound to the DaemonSet's service account.
        role = k8s.one(objects, "ClusterRole")
        self.assertEqual(role["rules"], [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}])
        binding = k8s.one(objects, "ClusterRoleBinding")
        self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": pod["serviceAccountName"],
                                                "namespace": "vigil"}])
        svc = k8s.one(objects, "Service")
        labels = ds["spec"]["template"]["metadata"]["labels"]
        self.assertTrue(set(svc["spec"]["selector"].items()) <= set(labels.items()))
        self.assertEqual(svc["spec"]["ports"][0]["targetPort"], "metrics")

    def test_overlays_change_what_they_say(self):
        otlp = k8s.render("otlp")
        text = self.check_config(k8s.one(otlp, "ConfigMap", "vigil-config"))
        self.assertIn("- type: otlp\n      endpoint: http://otel-collector.observability.svc:4318\n", text)
        base_cm = k8s.one(k8s.render(), "ConfigMap", "vigil-config")
        # The config's content hash rolls the DaemonSet when the sink is added.
        self.assertNotEqual(k8s.one(otlp, "ConfigMap", "vigil-config")["metadata"]["name"], base_cm["metadata"]["name"])
        ds = k8s.one(otlp, "DaemonSet")
        self.assertEqual(ds["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
                         k8s.one(otlp, "ConfigMap", "vigil-config")["metadata"]["name"])

        seccomp = k8s.agent_container(k8s.render("seccomp-localhost"))["securityContext"]["seccompProfile"]
        self.assertEqual(seccomp, {"type": "Localhost", "localhostProfile": "vigil.json"})

        sm_objects = k8s.render("servicemonitor")
        sm = k8s.one(sm_objects, "ServiceMonitor")
        svc = k8s.one(sm_objects, "Service")
        self.assertTrue(set(sm["spec"]["selector"]["matchLabels"].items()) <= set(svc["metadata"]["labels"].items()))
        self.assertEqual(sm["spec"]["endpoints"][0]["port"], svc["spec"]["ports"][0]["name"])


if __name__ == "__main__":
    unittest.main()
