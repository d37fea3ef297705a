#!/usr/bin/env bash
# Installs every Debian 12 package Vigil needs to build, test and run. Idempotent:
# packages already present are left alone and apt is not touched at all.
set -euo pipefail

# What building the binaries and the .deb takes (--build: only these, as the
# container image's build stage does).
build_packages=(
  build-essential cmake pkg-config make file
  clang-19 llvm-19 lld-19 libclang-rt-19-dev
  libbpf-dev bpftool libelf-dev zlib1g-dev
  android-libboringssl-dev
  libfmt-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhttp-parser-dev
  libnghttp2-dev libsqlite3-dev libhyperscan-dev libphonenumber-dev robin-map-dev libxxhash-dev libzstd-dev libsystemd-dev libcapstone-dev
  help2man dpkg-dev
)
packages=(
  "${build_packages[@]}" git zstd
  curl iproute2 python3 python3-yaml procps nginx dnsmasq-base rsyslog rsyslog-gnutls openssl prometheus
  lintian podman runc mmdebstrap uidmap golang-go gnutls-bin libcurl3-gnutls
)
# kubectl renders the Kustomize base; Debian's kubernetes-client only where
# no kubectl is installed already.
if ! command -v kubectl >/dev/null; then
  packages+=(kubernetes-client)
fi

case "${1:-}" in
  --bench) packages=(bpftrace wrk nftables valgrind) ;;  # peers and load generators for `make bench`
  --build) packages=("${build_packages[@]}") ;;
esac

# npm (for the validators the tests install, scripts/install-validators.sh) may
# come with a nodejs from elsewhere; only when there is none, Debian's.
if ! command -v npm >/dev/null && [ -z "${1:-}" ]; then
  packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Test peers (nginx, rsyslog, prometheus) are started by the tests with their own
# configs: the packages must not start system services (policy-rc.d, 101: not now).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
