// systemd's service notification protocol (sd_notify, libsystemd): READY=1 once the
// programs are attached and the sinks open, a STATUS= line, watchdog pings,
// RELOADING=1 / READY=1 around a SIGHUP, STOPPING=1. Without NOTIFY_SOCKET (not
// started by systemd) every call is a no-op.
#pragma once

#include <cstdint>
#include <string>

namespace vigil {

class ServiceNotifier {
 public:
  ServiceNotifier();
  void ready(const std::string& status);
  void status(const std::string& status);
  void reloading();
  // Pings the watchdog when half of WatchdogSec= has passed since the last ping.
  void tick(uint64_t now_ns);
  void stopping();
  uint64_t watchdog_ns() const { return watchdog_ns_; }
  // Started by systemd (NOTIFY_SOCKET set): only then is a STATUS= line worth building.
  bool active() const { return active_; }

 private:
  void send(const std::string& state);
  bool active_ = false;
  uint64_t watchdog_ns_ = 0;  // 0: no watchdog asked for
  uint64_t last_ping_ns_ = 0;
};

}  // namespace vigil
