#include "base/zstd_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>
#include <memory>

#include "base/fd.h"
#include "base/file.h"

namespace vigil {
namespace {

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

}  // namespace

bool is_zstd(std::string_view head) { return head.size() >= 4 && std::memcmp(head.data(), "\x28\xb5\x2f\xfd", 4) == 0; }

Status for_each_line(const std::string& path, const std::function<bool(std::string_view)>& fn) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return os_error("open " + path);
  std::unique_ptr<ZSTD_DCtx, DCtxFree> d;
  std::string raw(1u << 16, '\0'), text, out;
  size_t frame_left = 0;  // what the zstd stream still owes (0: at a frame boundary)
  bool first = true;
  // Hands whole lines of `text` to fn; false when fn asked to stop.
  auto lines = [&](bool last) {
    size_t start = 0, nl;
    while ((nl = text.find('\n', start)) != std::string::npos) {
      if (!fn(std::string_view(text).substr(start, nl - start))) return false;
      start = nl + 1;
    }
    text.erase(0, start);
    if (last && !text.empty()) return fn(text);
    return true;
  };
  while (true) {
    ssize_t n = ::read(fd.get(), raw.data(), raw.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("read " + path);
    if (n == 0) break;
    if (first && is_zstd(std::string_view(raw.data(), static_cast<size_t>(n)))) {
      d.reset(ZSTD_createDCtx());
      if (!d) return Error{"read " + path + ": out of memory for zstd"};
      out.resize(ZSTD_DStreamOutSize());
    }
    first = false;
    if (!d) {
      text.append(raw.data(), static_cast<size_t>(n));
    } else {
      ZSTD_inBuffer in{raw.data(), static_cast<size_t>(n), 0};
      while (in.pos < in.size) {
        ZSTD_outBuffer o{out.data(), out.size(), 0};
        frame_left = ZSTD_decompressStream(d.get(), &o, &in);
        if (ZSTD_isError(frame_left))
          return Error{"read " + path + ": corrupt zstd data (" + ZSTD_getErrorName(frame_left) + ")"};
        text.append(out.data(), o.pos);
      }
    }
    if (!lines(false)) return {};
  }
  while (d && frame_left != 0) {  // output the context still holds
    ZSTD_inBuffer in{nullptr, 0, 0};
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    frame_left = ZSTD_decompressStream(d.get(), &o, &in);
    if (ZSTD_isError(frame_left) || o.pos == 0)
      return Error{"read " + path + ": truncated zstd data (the file ends inside a frame)"};
    text.append(out.data(), o.pos);
  }
  lines(true);
  return {};
}

Status compress_file_zstd(const std::string& src, const std::string& dst, int level) {
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return os_error("open " + src + " to compress it");
  std::string tmp = dst + ".tmp";
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return os_error("create " + tmp);
  auto fail = [&](Error e) -> Status {
    ::unlink(tmp.c_str());
    return e;
  };
  std::unique_ptr<ZSTD_CCtx, CCtxFree> c(ZSTD_createCCtx());
  if (!c) return fail(Error{"compress " + src + ": out of memory for zstd"});
  ZSTD_CCtx_setParameter(c.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(c.get(), ZSTD_c_checksumFlag, 1);
  std::string ibuf(ZSTD_CStreamInSize(), '\0'), obuf(ZSTD_CStreamOutSize(), '\0');
  bool eof = false;
  while (!eof) {
    ssize_t n = ::read(in.get(), ibuf.data(), ibuf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(os_error("read " + src));
    eof = n == 0;
    ZSTD_inBuffer ib{ibuf.data(), static_cast<size_t>(n), 0};
    ZSTD_EndDirective mode = eof ? ZSTD_e_end : ZSTD_e_continue;
    bool done = false;
    while (!done) {
      ZSTD_outBuffer ob{obuf.data(), obuf.size(), 0};
      size_t left = ZSTD_compressStream2(c.get(), &ob, &ib, mode);
      if (ZSTD_isError(left)) return fail(Error{"compress " + src + ": " + ZSTD_getErrorName(left)});
      int err = 0;
      write_some(out.get(), std::string_view(obuf.data(), ob.pos), err);
      if (err) return fail(os_error("write " + tmp, err));
      done = eof ? left == 0 : ib.pos == ib.size;
    }
  }
  struct stat st{};
  if (::fstat(in.get(), &st) == 0) {
    timespec times[2] = {st.st_atim, st.st_mtim};
    ::futimens(out.get(), times);  // readers order rotated files by mtime
  }
  if (::fsync(out.get()) != 0) return fail(os_error("fsync " + tmp));
  if (::rename(tmp.c_str(), dst.c_str()) != 0) return fail(os_error("rename " + tmp + " to " + dst));
  return {};
}

}  // namespace vigil
