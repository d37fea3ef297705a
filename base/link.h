// An owner for a libbpf link: destroying it detaches the program (unless the
// link was pinned or disconnected first). Only kernel-side code creates them.
#pragma once

#include <bpf/libbpf.h>

#include <memory>

namespace vigil {

struct LinkDeleter {
  void operator()(bpf_link* link) const noexcept { bpf_link__destroy(link); }
};
using Link = std::unique_ptr<bpf_link, LinkDeleter>;

}  // namespace vigil
