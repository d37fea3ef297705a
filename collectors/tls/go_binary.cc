#include "collectors/tls/go_binary.h"

#include <capstone/capstone.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include "base/fd.h"
#include "base/log.h"

namespace vigil {
namespace {

constexpr std::string_view kWrite = "crypto/tls.(*Conn).Write";
constexpr std::string_view kRead = "crypto/tls.(*Conn).Read";

// [addr, addr + n) lies inside [base, base + size), computed without overflow.
bool within(uint64_t addr, uint64_t n, uint64_t base, uint64_t size) {
  return addr >= base && n <= size && addr - base <= size - n;
}

uint64_t load_le(std::span<const uint8_t> b, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}

// The offsets of each supported release line, oldest first: the layout of
// tls.Conn (conn net.Conn first), net.conn (fd *netFD only), netFD (pfd first)
// and poll.FD (fdMutex{uint64, uint32, uint32} then Sysfd) has not changed since
// Go 1.17. A release line newer than the table gets its last row (logged).
struct OffsetRow {
  int minor;  // go1.<minor> and later
  GoConnOffsets offsets;
};
constexpr OffsetRow kOffsets[] = {
    {17, {8, 0, 16}},
};
constexpr int kNewestChecked = 19;  // the newest Go whose layout a test here checked (Debian 12's)

// An ELF file opened with libelf: its sections by name.
class ElfFile {
 public:
  static Result<ElfFile> open(const std::string& path) {
    ElfFile f;
    f.fd_ = Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.fd_) return os_error("open " + path);
    elf_version(EV_CURRENT);
    f.elf_ = elf_begin(f.fd_.get(), ELF_C_READ_MMAP, nullptr);
    GElf_Ehdr eh;
    if (!f.elf_ || elf_kind(f.elf_) != ELF_K_ELF || !gelf_getehdr(f.elf_, &eh))
      return Error{fmt::format("{} is not an ELF file", path)};
    f.machine_ = eh.e_machine;
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(f.elf_, &shstrndx) != 0) return Error{fmt::format("{}: no section names", path)};
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(f.elf_, scn)) != nullptr) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh)) continue;
      if (const char* name = elf_strptr(f.elf_, shstrndx, sh.sh_name)) f.sections_[name] = scn;
    }
    return f;
  }
  ElfFile() = default;
  ElfFile(ElfFile&& o) noexcept : fd_(std::move(o.fd_)), elf_(std::exchange(o.elf_, nullptr)),
                                  machine_(o.machine_), sections_(std::move(o.sections_)) {}
  ~ElfFile() {
    if (elf_) elf_end(elf_);
  }

  Elf* elf() const { return elf_; }
  int machine() const { return machine_; }
  Elf_Scn* section(std::string_view name) const {
    auto it = sections_.find(name);
    return it == sections_.end() ? nullptr : it->second;
  }
  static GElf_Shdr header(Elf_Scn* scn) {
    GElf_Shdr sh{};
    gelf_getshdr(scn, &sh);
    return sh;
  }
  // A section's bytes as stored in the file (empty for NOBITS or on error).
  static std::span<const uint8_t> bytes(Elf_Scn* scn) {
    if (!scn || header(scn).sh_type == SHT_NOBITS) return {};
    Elf_Data* d = elf_rawdata(scn, nullptr);
    if (!d || !d->d_buf) return {};
    return {static_cast<const uint8_t*>(d->d_buf), d->d_size};
  }
  // `n` bytes at virtual address `addr`, from the loaded section holding them.
  // Addresses and sizes come from the file: every bound is checked without an
  // addition that could wrap (F2).
  std::vector<uint8_t> read(uint64_t addr, size_t n) const {
    for (const auto& [_, scn] : sections_) {
      GElf_Shdr sh = header(scn);
      if (sh.sh_type == SHT_NOBITS || !(sh.sh_flags & SHF_ALLOC)) continue;
      auto b = bytes(scn);
      if (!within(addr, n, sh.sh_addr, std::min<uint64_t>(sh.sh_size, b.size()))) continue;
      size_t at = addr - sh.sh_addr;
      return {b.begin() + at, b.begin() + at + n};
    }
    return {};
  }
  // The file offset of a virtual address inside `scn`.
  static uint64_t file_offset(Elf_Scn* scn, uint64_t addr) {
    GElf_Shdr sh = header(scn);
    return addr - sh.sh_addr + sh.sh_offset;
  }

 private:
  Fd fd_;
  Elf* elf_ = nullptr;
  int machine_ = 0;
  std::map<std::string, Elf_Scn*, std::less<>> sections_;
};

// The wanted functions from the symbol table (nothing when stripped).
std::vector<GoFunction> symtab_functions(const ElfFile& f, const std::vector<std::string_view>& wanted) {
  std::vector<GoFunction> out;
  Elf_Scn* scn = f.section(".symtab");
  if (!scn) return out;
  GElf_Shdr sh = ElfFile::header(scn);
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (!data || sh.sh_entsize == 0) return out;
  for (size_t i = 0, n = sh.sh_size / sh.sh_entsize; i < n && out.size() < wanted.size(); ++i) {
    GElf_Sym sym;
    if (!gelf_getsym(data, static_cast<int>(i), &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC) continue;
    const char* name = elf_strptr(f.elf(), sh.sh_link, sym.st_name);
    if (name && std::find(wanted.begin(), wanted.end(), std::string_view(name)) != wanted.end())
      out.push_back({name, sym.st_value, sym.st_size});
  }
  return out;
}

}  // namespace

std::optional<GoVersion> parse_go_version(std::string_view s) {
  size_t at = s.find("go1.");
  if (at == std::string_view::npos) return std::nullopt;
  GoVersion v{1, 0, 0};
  const char* p = s.data() + at + 4;
  const char* end = s.data() + s.size();
  if (p == end || !std::isdigit(static_cast<unsigned char>(*p))) return std::nullopt;
  while (p != end && std::isdigit(static_cast<unsigned char>(*p))) v.minor = v.minor * 10 + (*p++ - '0');
  if (p != end && *p == '.') {
    ++p;
    while (p != end && std::isdigit(static_cast<unsigned char>(*p))) v.patch = v.patch * 10 + (*p++ - '0');
  }
  return v;
}

Result<GoConnOffsets> go_conn_offsets(std::string_view version) {
  auto v = parse_go_version(version);
  if (!v) return Error{fmt::format("Go version '{}' not understood", version)};
  if (v->minor < kOffsets[0].minor)
    return Error{fmt::format("{}: Go before 1.17 passes arguments on the stack; only the register ABI is probed",
                             version)};
  const OffsetRow* row = &kOffsets[0];
  for (const auto& r : kOffsets)
    if (v->minor >= r.minor) row = &r;
  if (v->minor > kNewestChecked)
    log::debug("{}: newer than the Go versions checked here, using the go1.{}+ layout", version, row->minor);
  return row->offsets;
}

Result<std::string> go_buildinfo_version(std::span<const uint8_t> b,
                                         const std::function<std::vector<uint8_t>(uint64_t, size_t)>& read) {
  static constexpr uint8_t kMagic[] = {0xff, ' ', 'G', 'o', ' ', 'b', 'u', 'i', 'l', 'd', 'i', 'n', 'f', ':'};
  if (b.size() < 32 || !std::equal(std::begin(kMagic), std::end(kMagic), b.begin()))
    return Error{"no Go build info magic"};
  size_t ptr = b[14];
  uint8_t flags = b[15];
  if (flags & 1) return Error{"big-endian Go build info"};
  if (ptr != 4 && ptr != 8) return Error{fmt::format("Go build info pointer size {}", ptr)};
  if (flags & 2) {  // Go 1.18+: varint length, then the bytes, at offset 32
    uint64_t len = 0;
    size_t at = 32;
    for (int shift = 0; at < b.size(); shift += 7) {
      uint8_t c = b[at++];
      len |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) break;
      if (shift > 56) return Error{"Go build info: bad length"};
    }
    if (len == 0 || len > b.size() - at) return Error{"Go build info: version out of bounds"};
    return std::string(reinterpret_cast<const char*>(b.data() + at), len);
  }
  // Older: a pointer to a string header (data pointer, length).
  uint64_t hdr = load_le(b, 16, ptr);
  auto h = read(hdr, 2 * ptr);
  if (h.size() != 2 * ptr) return Error{"Go build info: version header unreadable"};
  uint64_t data = load_le(h, 0, ptr), len = load_le(h, ptr, ptr);
  if (len == 0 || len > 256) return Error{"Go build info: bad version length"};
  auto s = read(data, len);
  if (s.size() != len) return Error{"Go build info: version unreadable"};
  return std::string(s.begin(), s.end());
}

Result<std::vector<GoFunction>> go_pclntab_functions(std::span<const uint8_t> t, uint64_t text_addr,
                                                     const std::vector<std::string_view>& wanted) {
  if (t.size() < 16 || t[4] != 0 || t[5] != 0) return Error{".gopclntab: bad header"};
  uint32_t magic = static_cast<uint32_t>(load_le(t, 0, 4));
  size_t ptr = t[7];
  if (ptr != 8) return Error{fmt::format(".gopclntab: pointer size {}", ptr)};
  // Go 1.18 and 1.20+ (text-relative 32-bit entries) or Go 1.16/1.17 (absolute
  // pointer-sized entries); Go 1.2–1.15 predate the register ABI anyway.
  bool v118 = magic == 0xfffffff0 || magic == 0xfffffff1;
  if (!v118 && magic != 0xfffffffa) return Error{fmt::format(".gopclntab: magic {:#x} not supported", magic)};
  auto word = [&](size_t i) -> uint64_t {
    size_t at = 8 + i * ptr;
    return at + ptr <= t.size() ? load_le(t, at, ptr) : UINT64_MAX;
  };
  uint64_t nfunc = word(0);
  uint64_t names = word(v118 ? 3 : 2), pcln = word(v118 ? 7 : 6);
  size_t field = v118 ? 4 : ptr;
  // nfunc is bounded by what the table can hold before it is multiplied (F4).
  if (nfunc == UINT64_MAX || names >= t.size() || pcln >= t.size() ||
      nfunc >= (t.size() - pcln) / (2 * field) || (nfunc * 2 + 1) * field > t.size() - pcln)
    return Error{".gopclntab: tables out of bounds"};
  auto functab = t.subspan(pcln);
  auto entry = [&](uint64_t i) { return load_le(functab, i * 2 * field, field) + (v118 ? text_addr : 0); };
  std::vector<GoFunction> out;
  for (uint64_t i = 0; i < nfunc && out.size() < wanted.size(); ++i) {
    uint64_t funcoff = load_le(functab, i * 2 * field + field, field);
    // _func: entry, then nameoff (int32)
    if (functab.size() < field + 4 || funcoff > functab.size() - field - 4)
      return Error{".gopclntab: function record out of bounds"};
    size_t name_at = funcoff + field;
    auto nameoff = static_cast<int32_t>(load_le(functab, name_at, 4));
    if (nameoff < 0 || static_cast<uint64_t>(nameoff) >= t.size() - names) continue;
    const char* s = reinterpret_cast<const char*>(t.data() + names + nameoff);
    std::string_view name(s, strnlen(s, t.size() - names - nameoff));
    if (std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    uint64_t start = entry(i), end = entry(i + 1);  // the table's last entry is the end of text
    if (end <= start) return Error{fmt::format(".gopclntab: {} has no extent", name)};
    out.push_back({std::string(name), start, end - start});
  }
  return out;
}

Result<std::vector<uint64_t>> x86_return_offsets(std::span<const uint8_t> code, size_t max) {
  csh h;
  if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) return Error{"capstone: cannot open an x86-64 disassembler"};
  std::vector<uint64_t> out;
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t addr = 0;
  cs_insn* insn = cs_malloc(h);
  // One instruction at a time: padding (int3) and data between instructions do not stop the walk.
  while (left > 0) {
    if (!cs_disasm_iter(h, &p, &left, &addr, insn)) {
      ++p, --left, ++addr;  // undecodable byte: skip it
      continue;
    }
    if (insn->id == X86_INS_RET && out.size() <= max) out.push_back(insn->address);
  }
  cs_free(insn, 1);
  cs_close(&h);
  return out;
}

Result<std::optional<GoTlsBinary>> inspect_go_binary(const std::string& path, bool prefer_pclntab) {
  auto f = ElfFile::open(path);
  if (!f) return f.error();
  Elf_Scn* info = f->section(".go.buildinfo");
  Elf_Scn* pclntab = f->section(".gopclntab");
  if (!info && !pclntab) return std::optional<GoTlsBinary>{};  // not Go
  GoTlsBinary out;
  auto unsupported = [&](std::string why) {
    out.error = std::move(why);
    return std::optional<GoTlsBinary>(std::move(out));
  };
  if (!info) return unsupported("Go binary without .go.buildinfo (its version is unknown)");
  auto version = go_buildinfo_version(ElfFile::bytes(info), [&](uint64_t a, size_t n) { return f->read(a, n); });
  if (!version) return unsupported(version.error().message);
  out.version = *version;
  Elf_Scn* text = f->section(".text");
  if (!text) return unsupported("no .text section");
  std::vector<std::string_view> wanted = {kWrite, kRead};
  std::vector<GoFunction> funcs;
  if (!prefer_pclntab) funcs = symtab_functions(*f, wanted);
  out.symbols = "symtab";
  if (funcs.size() < wanted.size()) {
    if (!pclntab) return unsupported("stripped Go binary without .gopclntab");
    auto p = go_pclntab_functions(ElfFile::bytes(pclntab), ElfFile::header(text).sh_addr, wanted);
    if (!p) return unsupported(p.error().message);
    funcs = std::move(*p);
    out.symbols = "pclntab";
  }
  auto find = [&](std::string_view n) -> const GoFunction* {
    for (const auto& g : funcs)
      if (g.name == n) return &g;
    return nullptr;
  };
  const GoFunction* w = find(kWrite);
  const GoFunction* r = find(kRead);
  if (!w && !r) return std::optional<GoTlsBinary>{};  // Go without crypto/tls
  if (!w || !r) return unsupported(fmt::format("{} not found", w ? kRead : kWrite));
  if (f->machine() != EM_X86_64) return unsupported("only x86-64 Go binaries are probed");
  auto offsets = go_conn_offsets(out.version);
  if (!offsets) return unsupported(offsets.error().message);
  out.conn = *offsets;
  GElf_Shdr tsh = ElfFile::header(text);
  auto code = ElfFile::bytes(text);
  // Symbol values and sizes come from the file: checked without wrapping (F3).
  if (!within(r->addr, r->size, tsh.sh_addr, code.size()) || !within(w->addr, 1, tsh.sh_addr, code.size()))
    return unsupported("crypto/tls functions outside .text");
  if (r->size > kMaxReadBytes)
    return unsupported(fmt::format("{} is {} bytes, more than the {} a real one has", kRead, r->size, kMaxReadBytes));
  auto rets = x86_return_offsets(code.subspan(r->addr - tsh.sh_addr, r->size), kMaxReadReturns);
  if (!rets) return unsupported(rets.error().message);
  if (rets->empty()) return unsupported(fmt::format("no RET instruction in {}", kRead));
  // One uprobe per RET: a crafted Read of thousands of RETs must not become
  // thousands of probes (F5). Real ones have fewer than ten.
  if (rets->size() > kMaxReadReturns)
    return unsupported(fmt::format("more than {} RET instructions in {}", kMaxReadReturns, kRead));
  out.write_offset = ElfFile::file_offset(text, w->addr);
  out.read_offset = ElfFile::file_offset(text, r->addr);
  for (uint64_t at : *rets) out.read_returns.push_back(out.read_offset + at);
  return std::optional<GoTlsBinary>(std::move(out));
}

uint64_t go_tls_cookie(uint8_t lib, const GoConnOffsets& o) {
  return lib | (uint64_t{o.iface_data} << 8) | (uint64_t{o.netfd} << 16) | (uint64_t{o.sysfd} << 24);
}

}  // namespace vigil
