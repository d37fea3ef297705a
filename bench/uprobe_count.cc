// bench/: attaches a counting uprobe at each file OFFSET of BINARY, prints
// "attached", and on SIGINT/SIGTERM prints the total hits (go_tls.py's peer).
//   uprobe_count BINARY OFFSET...
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bpf/uprobe_count.skel.h"

namespace {
volatile std::sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s BINARY OFFSET...\n", argv[0]);
    return 2;
  }
  uprobe_count_bpf* skel = uprobe_count_bpf__open_and_load();
  if (!skel) {
    std::perror("uprobe_count: load");
    return 1;
  }
  std::vector<bpf_link*> links;
  for (int i = 2; i < argc; ++i) {
    uint64_t off = std::strtoull(argv[i], nullptr, 0);
    bpf_link* l = bpf_program__attach_uprobe(skel->progs.uprobe__count, false, -1, argv[1], off);
    if (!l) {
      std::fprintf(stderr, "uprobe_count: attach %s:%#llx: failed\n", argv[1], static_cast<unsigned long long>(off));
      return 1;
    }
    links.push_back(l);
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::printf("attached\n");
  std::fflush(stdout);
  while (!stop) pause();
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> per_cpu(ncpu > 0 ? ncpu : 1);
  uint32_t key = 0;
  uint64_t total = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.hits), &key, per_cpu.data()) == 0)
    for (uint64_t n : per_cpu) total += n;
  std::printf("%llu\n", static_cast<unsigned long long>(total));
  for (bpf_link* l : links) bpf_link__destroy(l);
  uprobe_count_bpf__destroy(skel);
  return 0;
}
