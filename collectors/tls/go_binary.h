// Go executables: crypto/tls lives inside the binary (no libssl), so its
// plaintext is probed at crypto/tls.(*Conn).Write and (*Conn).Read. Go moves
// goroutine stacks, so a uretprobe (which rewrites the return address on the
// stack) is unsafe: the returns of Read are found by disassembling it and each
// RET instruction gets a plain uprobe. Symbols come from the symbol table, or
// from .gopclntab when the binary is stripped (`-ldflags='-s -w'` keeps it: the
// runtime needs it); the Go version from .go.buildinfo.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vigil {

// Where the socket's fd is, from a *crypto/tls.Conn: Conn.conn is a net.Conn
// interface (itab, data); data is a *net.TCPConn whose conn.fd is a *net.netFD;
// netFD.pfd.Sysfd is the fd. Byte offsets, packed into the uprobe's attach
// cookie (see go_tls_cookie and bpf/observe/go_tls.bpf.h).
struct GoConnOffsets {
  uint8_t iface_data = 0;  // tls.Conn.conn's data word
  uint8_t netfd = 0;       // net.conn.fd in the value the interface points to
  uint8_t sysfd = 0;       // netFD.pfd + poll.FD.Sysfd
  bool operator==(const GoConnOffsets&) const = default;
};

struct GoVersion {
  int major = 0, minor = 0, patch = 0;
};
// "go1.19.8", "go1.21rc2", "devel go1.23-abc…": the first "go1.N[.P]"; nullopt if none.
std::optional<GoVersion> parse_go_version(std::string_view s);

// The offsets for a Go version (a table per release line, checked against each
// Go this project tests with), or why that version is not supported: before 1.17
// arguments were passed on the stack (this agent reads the register ABI only).
Result<GoConnOffsets> go_conn_offsets(std::string_view version);

// A function of a Go binary: its name and where its code is.
struct GoFunction {
  std::string name;
  uint64_t addr = 0, size = 0;  // virtual address, bytes
};

// The version string in a .go.buildinfo section (Go 1.18+ inline form; the older
// form points into the data: `read(addr, n)` gives n bytes at a virtual address).
Result<std::string> go_buildinfo_version(std::span<const uint8_t> buildinfo,
                                         const std::function<std::vector<uint8_t>(uint64_t, size_t)>& read);
// The functions named in a .gopclntab section (Go 1.16+ layouts) whose names are
// in `wanted`; `text_addr` is the .text section's address (PIE binaries leave the
// header's text start to a relocation).
Result<std::vector<GoFunction>> go_pclntab_functions(std::span<const uint8_t> pclntab, uint64_t text_addr,
                                                     const std::vector<std::string_view>& wanted);
// Offsets (from the start of `code`) of its RET instructions (x86-64); at most
// `max` + 1 are collected, so that a caller can tell "more than max".
Result<std::vector<uint64_t>> x86_return_offsets(std::span<const uint8_t> code, size_t max = SIZE_MAX);

// Bounds on what a crafted executable can make the agent do: crypto/tls's Read
// is a few KiB with fewer than ten RETs in every Go release.
constexpr uint64_t kMaxReadBytes = 64 * 1024;
constexpr size_t kMaxReadReturns = 64;

struct GoTlsBinary {
  std::string version;  // "go1.19.8"
  std::string symbols;  // "symtab" or "pclntab": where the functions were found
  uint64_t write_offset = 0, read_offset = 0;  // file offsets of the entries
  std::vector<uint64_t> read_returns;          // file offsets of Read's RET instructions
  GoConnOffsets conn;
  std::string error;  // set: a Go binary with crypto/tls that cannot be probed, and why
};

// nullopt: not a Go binary, or a Go binary without crypto/tls. An error: the
// file cannot be read or is not ELF. A Go binary whose TLS cannot be probed (its
// version, a missing function) comes back with `error` saying why.
// `prefer_pclntab` ignores the symbol table (tests compare both ways).
Result<std::optional<GoTlsBinary>> inspect_go_binary(const std::string& path, bool prefer_pclntab = false);

// The attach cookie of a Go TLS uprobe: the library number and the offsets.
uint64_t go_tls_cookie(uint8_t lib, const GoConnOffsets& o);

}  // namespace vigil
