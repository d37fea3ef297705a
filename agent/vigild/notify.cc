#include "agent/vigild/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>

#include "base/log.h"

namespace vigil {

ServiceNotifier::ServiceNotifier() : active_(std::getenv("NOTIFY_SOCKET") != nullptr) {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) watchdog_ns_ = usec * 1000;
}

void ServiceNotifier::send(const std::string& state) {
  if (int rc = sd_notify(0, state.c_str()); rc < 0) log::debug("sd_notify: {}", std::strerror(-rc));
}

void ServiceNotifier::ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }
void ServiceNotifier::status(const std::string& status) { send("STATUS=" + status); }
void ServiceNotifier::reloading() { send("RELOADING=1\nSTATUS=reloading policies"); }
void ServiceNotifier::stopping() { send("STOPPING=1\nSTATUS=stopping"); }

void ServiceNotifier::tick(uint64_t now_ns) {
  if (watchdog_ns_ == 0 || now_ns - last_ping_ns_ < watchdog_ns_ / 2) return;
  last_ping_ns_ = now_ns;
  send("WATCHDOG=1");
}

}  // namespace vigil
