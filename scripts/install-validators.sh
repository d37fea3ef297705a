#!/usr/bin/env bash
# Installs the ecosystem's own format validators from npm into BUILD_DIR/npm
# (cached between runs): @redocly/cli lints the OpenAPI that `vigil map export`
# writes. A failure here is reported, not fatal: the tests that need a validator
# then skip with the reason (or fail under VIGIL_REQUIRE_BPF=1).
set -uo pipefail
dir="${1:-build}/npm"
mkdir -p "$dir"
if [ -x "$dir/node_modules/.bin/redocly" ]; then exit 0; fi
if ! command -v npm >/dev/null; then
  echo "install-validators: npm not found (scripts/install-deps.sh installs it)" >&2
  exit 0
fi
# @redocly/cli 2 needs node >= 20; Debian 12's own nodejs is 18.
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
version=2
[ "$major" -lt 20 ] && version=1
echo "install-validators: npm install @redocly/cli@$version into $dir"
if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@redocly/cli@$version" >"$dir/install.log" 2>&1; then
  echo "install-validators: npm install failed (see $dir/install.log):" >&2
  tail -5 "$dir/install.log" >&2
fi
exit 0
