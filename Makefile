# Thin wrapper over CMake. Quick start (root, Debian 12): `make run`, `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CONFIG ?=
VIGILD_ARGS ?= $(if $(CONFIG),--config $(CONFIG),)

.PHONY: all deps validators configure build package image run test test-unit test-bpf test-e2e test-fuzz bench clean vmlinux

all: build

deps:
	@./scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD_DIR)/CMakeCache.txt

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# build/vigil_<version>_amd64.deb (packaging/CMakeLists.txt)
package: build
	cd $(BUILD_DIR) && cpack -G DEB

# The container image (packaging/container/Dockerfile) with podman or docker.
image: deps
	./scripts/build-image.sh $(IMAGE)

run: build
	@echo "vigild: events go to stdout and /var/log/vigil/events.jsonl; try 'build/bin/vigil trace' in another shell; Ctrl-C stops"
	$(BUILD_DIR)/bin/vigild $(VIGILD_ARGS)

validators:
	@./scripts/install-validators.sh $(BUILD_DIR)

test: build validators
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 600

test-unit test-bpf test-e2e test-fuzz: build validators
	cd $(BUILD_DIR) && ctest --output-on-failure -L $(patsubst test-%,%,$@)

bench: build
	@./scripts/install-deps.sh --bench
	/usr/bin/python3 bench/run.py

# Regenerates the committed vmlinux.h from this machine's kernel BTF.
vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux/x86/vmlinux.h

clean:
	rm -rf $(BUILD_DIR)
