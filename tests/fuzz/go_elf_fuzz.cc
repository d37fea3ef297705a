// libFuzzer: an executable (or a mapping named libssl*) a user crafts, read the
// way the TLS scan reads every new one: inspect_go_binary (build info, symbol
// table, .gopclntab, capstone on Read) and for_each_elf_function (the symbol
// walk of libssl and static copies). The input is either a whole ELF file (the
// security review's proofs of concept are seeds) or, by default, the parts of
// one: a well-formed ELF64 is assembled from fuzzed section addresses,
// contents and symbol values, so that libelf accepts it and the Go parsers run.
// Bounds the parsers promise: at most kMaxReadReturns RET sites.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "collectors/kernel/uprobe.h"
#include "collectors/tls/go_binary.h"
#include "tests/common/elf_builder.h"

namespace {

void put_le(std::string& s, size_t at, uint64_t v, size_t n) {
  if (s.size() < at + n) s.resize(at + n, '\0');
  for (size_t i = 0; i < n; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

std::string assembled(FuzzedDataProvider& fdp, std::string& pcln, uint64_t& text_addr, bool& prefer_pclntab) {
  using vigil::testing::ElfSection;
  uint8_t mode = fdp.ConsumeIntegral<uint8_t>();
  text_addr = (mode & 1) ? fdp.ConsumeIntegral<uint64_t>() : 0x401000;
  uint64_t pcln_addr = (mode & 2) ? fdp.ConsumeIntegral<uint64_t>() : 0x500000;
  uint64_t info_addr = (mode & 4) ? fdp.ConsumeIntegral<uint64_t>() : 0x600000;
  bool with_symtab = mode & 8;
  prefer_pclntab = mode & 16;
  std::string info = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<size_t>(0, 300));
  if (mode & 32) {  // the header vigild looks for, old or new form
    if (info.size() < 32) info.resize(32, '\0');
    std::memcpy(info.data(), "\xff Go buildinf:", 14);
    info[14] = 8;
    info[15] = static_cast<char>(info[15] & 2);
  }
  pcln = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<size_t>(0, 2048));
  if (mode & 64) {
    if (pcln.size() < 16) pcln.resize(16, '\0');
    put_le(pcln, 0, (mode & 128) ? 0xfffffff1u : 0xfffffffau, 4);
    pcln[4] = pcln[5] = 0;
    pcln[7] = 8;
  }
  std::string text = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<size_t>(1, 1024));
  std::vector<ElfSection> secs = {{".text", SHT_PROGBITS, text_addr, text, 0, 0, SHF_ALLOC | SHF_EXECINSTR},
                                  {".gopclntab", SHT_PROGBITS, pcln_addr, pcln},
                                  {".go.buildinfo", SHT_PROGBITS, info_addr, info},
                                  {".comment", SHT_PROGBITS, fdp.ConsumeIntegral<uint64_t>(),
                                   fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<size_t>(0, 64)), 0, 0, 0}};
  if (with_symtab) {
    std::string strtab("\0crypto/tls.(*Conn).Write\0crypto/tls.(*Conn).Read\0SSL_read\0SSL_write\0", 70);
    std::string syms(sizeof(Elf64_Sym), '\0');
    for (uint32_t name : {1u, 26u, 50u, 59u}) {
      uint64_t value = fdp.ConsumeBool() ? text_addr + fdp.ConsumeIntegralInRange<uint64_t>(0, 2048)
                                         : fdp.ConsumeIntegral<uint64_t>();
      uint64_t size = fdp.ConsumeBool() ? fdp.ConsumeIntegralInRange<uint64_t>(0, 2048) : fdp.ConsumeIntegral<uint64_t>();
      syms += vigil::testing::elf_function_symbol(name, value, size);
    }
    secs.push_back({".strtab", SHT_STRTAB, 0, strtab});
    secs.push_back({".symtab", SHT_SYMTAB, 0, syms, static_cast<uint32_t>(secs.size()), sizeof(Elf64_Sym)});
  }
  return vigil::testing::build_elf(secs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string elf, pcln;
  uint64_t text_addr = 0x401000;
  bool prefer_pclntab = false;
  if (size >= 4 && std::memcmp(data, "\x7f" "ELF", 4) == 0) {
    elf.assign(reinterpret_cast<const char*>(data), size);
  } else {
    FuzzedDataProvider fdp(data, size);
    elf = assembled(fdp, pcln, text_addr, prefer_pclntab);
  }
  int fd = memfd_create("go_elf_fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (write(fd, elf.data(), elf.size()) != static_cast<ssize_t>(elf.size())) {
    close(fd);
    return 0;
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  for (bool pclntab : {prefer_pclntab, !prefer_pclntab}) {
    auto r = vigil::inspect_go_binary(path, pclntab);
    if (r && *r && (*r)->read_returns.size() > vigil::kMaxReadReturns) __builtin_trap();
  }
  (void)vigil::for_each_elf_function(path, [](std::string_view, uint64_t) { return true; });
  if (!pcln.empty())
    (void)vigil::go_pclntab_functions({reinterpret_cast<const uint8_t*>(pcln.data()), pcln.size()}, text_addr,
                                      {"crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read"});
  close(fd);
  return 0;
}
