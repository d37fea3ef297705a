#!/usr/bin/env bash
# Installs the ecosystem's own format validators from npm into BUILD_DIR/npm
# (cached between runs): @redocly/cli lints the OpenAPI that `vigil map export`
# writes; @opentelemetry/otlp-transformer 0.57 carries the OTLP protobuf
# definitions (protobufjs code generated from opentelemetry-proto) that the OTLP
# sink's bodies are decoded with; kubernetes-models (and its prometheus-operator
# companion, for the ServiceMonitor) validates the rendered Kustomize base and
# overlays against the Kubernetes API schemas. A failure here is reported, not fatal: the
# tests that need a validator then skip with the reason (or fail under
# VIGIL_REQUIRE_BPF=1).
set -uo pipefail
dir="${1:-build}/npm"
mkdir -p "$dir"
otlp="$dir/node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js"
k8s="$dir/node_modules/kubernetes-models/apps/v1/DaemonSet.js"
monitoring="$dir/node_modules/@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js"
if [ -x "$dir/node_modules/.bin/redocly" ] && [ -f "$otlp" ] && [ -f "$k8s" ] && [ -f "$monitoring" ]; then exit 0; fi
if ! command -v npm >/dev/null; then
  echo "install-validators: npm not found (scripts/install-deps.sh installs it)" >&2
  exit 0
fi
# @redocly/cli 2 needs node >= 20; Debian 12's own nodejs is 18.
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
version=2
[ "$major" -lt 20 ] && version=1
pkgs=("@redocly/cli@$version" "@opentelemetry/otlp-transformer@0.57.2"
      "kubernetes-models@4.5.1" "@kubernetes-models/prometheus-operator@6.0.0")
echo "install-validators: npm install ${pkgs[*]} into $dir"
if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "${pkgs[@]}" >"$dir/install.log" 2>&1; then
  echo "install-validators: npm install failed (see $dir/install.log):" >&2
  tail -5 "$dir/install.log" >&2
fi
exit 0
