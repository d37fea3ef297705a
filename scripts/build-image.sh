#!/usr/bin/env bash
# Builds Vigil's container image (packaging/container/Dockerfile) with podman or
# docker, whichever works here (podman first). The Debian 12 base is made from the
# Debian archive with mmdebstrap and imported once (no image registry is reachable).
#   scripts/build-image.sh [--prebuilt] [TAG]     default TAG: localhost/vigil:<version>
#     --prebuilt  the runtime stage takes build/vigil_<version>_amd64.deb (`make package`)
#                 instead of compiling in the build stage
# Prints the engine and the tag on its last line: "<engine> <tag>".
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^project(vigil VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_from=build
if [ "${1:-}" = "--prebuilt" ]; then
  deb_from=prebuilt
  shift
  [ -f "build/vigil_${version}_amd64.deb" ] || { echo "build-image: --prebuilt: no build/vigil_${version}_amd64.deb (make package)" >&2; exit 2; }
fi
tag="${1:-localhost/vigil:$version}"
base=localhost/vigil/debian:bookworm

engine=""
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
  engine=podman
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
else
  echo "build-image: no working container engine: install podman (scripts/install-deps.sh does) or start docker" >&2
  exit 2
fi

if ! $engine image inspect "$base" >/dev/null 2>&1; then
  command -v mmdebstrap >/dev/null || { echo "build-image: mmdebstrap not found (scripts/install-deps.sh installs it)" >&2; exit 2; }
  # The host's own apt sources (its mirror, bookworm-updates, security), else deb.debian.org.
  sources=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -s "$f" ] && grep -q '^[^#]' "$f" && sources+=("$f")
  done
  [ ${#sources[@]} -eq 0 ] && sources=(http://deb.debian.org/debian)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "build-image: making $base with mmdebstrap (${sources[*]})"
  mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$tmp/base.tar" "${sources[@]}" </dev/null
  $engine import --change 'CMD ["/bin/bash"]' "$tmp/base.tar" "$base" >/dev/null
fi

echo "build-image: $engine build -t $tag (the .deb from the $deb_from stage)"
$engine build --build-arg "BASE=$base" --build-arg "DEB_FROM=$deb_from" --target runtime \
  -f packaging/container/Dockerfile -t "$tag" .
echo "$engine $tag"
