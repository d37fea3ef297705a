// Sockets that were open before the agent started: the kernel programs only
// see connect/accept from their load on, so a keep-alive connection older than
// the agent is found here, in /proc, and handed to the kernel as a seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vigil {

struct OpenSocket {
  uint32_t pid = 0;
  int32_t fd = 0;
  uint8_t role = 0;  // VIGIL_ROLE_CLIENT, or VIGIL_ROLE_SERVER when its local port listens
};

struct OpenSocketScan {
  std::vector<OpenSocket> sockets;
  size_t over_limit = 0;  // found but not returned (the limit)
};

// Every established TCP connection and connected UDP socket over IP held by a
// process under `proc_root` (the fd links `socket:[INODE]` joined with the
// socket tables of the process's network namespace), but those of `skip_pid`;
// at most `limit`.
OpenSocketScan find_open_sockets(const std::string& proc_root, uint32_t skip_pid, size_t limit);

}  // namespace vigil
