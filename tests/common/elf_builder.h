// A minimal ELF64 (x86-64) writer for tests and fuzz targets: sections with
// chosen names, addresses and bytes, and a symbol table, so that crafted
// executables (the security review's) are made in the test, not committed.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace vigil::testing {

struct ElfSection {
  std::string name;
  uint32_t type = SHT_PROGBITS;
  uint64_t addr = 0;
  std::string data;
  uint32_t link = 0;  // a section index of the file: the given sections are 1, 2, …
  uint64_t entsize = 0;
  uint64_t flags = SHF_ALLOC;
};

// Section 0 is the null section; the given sections follow in order, then .shstrtab.
inline std::string build_elf(const std::vector<ElfSection>& secs) {
  std::string shstr(1, '\0');
  std::vector<uint32_t> name_off;
  for (const auto& s : secs) {
    name_off.push_back(static_cast<uint32_t>(shstr.size()));
    shstr += s.name;
    shstr += '\0';
  }
  auto shstr_name = static_cast<uint32_t>(shstr.size());
  shstr += ".shstrtab";
  shstr += '\0';
  std::string out(sizeof(Elf64_Ehdr), '\0');
  std::vector<uint64_t> offs;
  for (const auto& s : secs) {
    while (out.size() % 16) out.push_back('\0');
    offs.push_back(out.size());
    out += s.data;
  }
  uint64_t shstr_off = out.size();
  out += shstr;
  while (out.size() % 8) out.push_back('\0');
  uint64_t shoff = out.size();
  std::vector<Elf64_Shdr> sh(secs.size() + 2);
  std::memset(sh.data(), 0, sh.size() * sizeof(Elf64_Shdr));
  for (size_t i = 0; i < secs.size(); ++i) {
    auto& h = sh[i + 1];
    h.sh_name = name_off[i];
    h.sh_type = secs[i].type;
    h.sh_flags = secs[i].type == SHT_PROGBITS ? secs[i].flags : 0;
    h.sh_addr = secs[i].addr;
    h.sh_offset = offs[i];
    h.sh_size = secs[i].data.size();
    h.sh_link = secs[i].link;
    h.sh_entsize = secs[i].entsize;
    h.sh_addralign = 1;
  }
  auto& hs = sh.back();
  hs.sh_name = shstr_name;
  hs.sh_type = SHT_STRTAB;
  hs.sh_offset = shstr_off;
  hs.sh_size = shstr.size();
  out.append(reinterpret_cast<const char*>(sh.data()), sh.size() * sizeof(Elf64_Shdr));
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shoff = shoff;
  eh.e_shnum = static_cast<uint16_t>(sh.size());
  eh.e_shstrndx = static_cast<uint16_t>(sh.size() - 1);
  std::memcpy(out.data(), &eh, sizeof eh);
  return out;
}

// An ELF64 symbol of a function in section 1 (the first one given).
inline std::string elf_function_symbol(uint32_t name, uint64_t value, uint64_t size) {
  Elf64_Sym s{};
  s.st_name = name;
  s.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
  s.st_shndx = 1;
  s.st_value = value;
  s.st_size = size;
  return std::string(reinterpret_cast<const char*>(&s), sizeof s);
}

// The Go 1.18+ inline .go.buildinfo form holding `version`.
inline std::string go_buildinfo(const std::string& version) {
  std::string b("\xff Go buildinf:", 14);
  b += static_cast<char>(8);
  b += static_cast<char>(2);
  b.resize(32, '\0');
  b += static_cast<char>(version.size());
  b += version;
  b.resize(b.size() + 8, '\0');
  return b;
}

// A "Go executable" with crypto/tls: Write at .text, Read of `read_code` after it.
inline std::string go_tls_elf(const std::string& read_code, const std::string& version = "go1.19.8") {
  constexpr uint64_t kText = 0x401000;
  std::string text(16, '\x90');
  text += read_code;
  std::string strtab("\0crypto/tls.(*Conn).Write\0crypto/tls.(*Conn).Read\0", 50);
  std::string syms(sizeof(Elf64_Sym), '\0');
  syms += elf_function_symbol(1, kText, 16);
  syms += elf_function_symbol(26, kText + 16, read_code.size());
  return build_elf({{".text", SHT_PROGBITS, kText, text, 0, 0, SHF_ALLOC | SHF_EXECINSTR},
                    {".go.buildinfo", SHT_PROGBITS, 0x600000, go_buildinfo(version)},
                    {".gopclntab", SHT_PROGBITS, 0x500000, std::string(16, '\0')},
                    {".strtab", SHT_STRTAB, 0, strtab},
                    {".symtab", SHT_SYMTAB, 0, syms, 4, sizeof(Elf64_Sym)}});
}

}  // namespace vigil::testing
