// vigild: the Vigil host agent.
#include <csignal>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "agent/vigild/agent.h"
#include "base/log.h"
#include "agent/config/config.h"
#include "agent/vigild/version.h"

namespace {
std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void on_signal(int) { g_stop.store(true); }
void on_hup(int) { g_reload.store(true); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigild — eBPF host agent for API security"};
  std::string config_path;
  bool verbose = false, print_default = false, check_only = false, version = false;
  app.add_option("-c,--config", config_path, "configuration file (YAML); default: embedded");
  app.add_flag("-v,--verbose", verbose, "debug logging, including libbpf's");
  app.add_flag("--print-default-config", print_default, "print the embedded configuration and exit");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.add_flag("-V,--version", version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);

  if (version) {
    std::printf("vigild %s\n", VIGIL_VERSION);
    return 0;
  }
  if (print_default) {
    std::fwrite(vigil::default_config_yaml().data(), 1, vigil::default_config_yaml().size(), stdout);
    return 0;
  }
  if (verbose) vigil::log::set_level(vigil::log::Level::kDebug);

  auto config = config_path.empty()
                    ? vigil::parse_config(vigil::default_config_yaml(), "<embedded default>")
                    : vigil::load_config_file(config_path);
  if (!config) {
    vigil::log::error("invalid configuration: {}", config.error().message);
    return 2;
  }
  if (check_only) {
    std::printf("%s: ok\n", config_path.empty() ? "<embedded default>" : config_path.c_str());
    return 0;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hup;
  sigaction(SIGHUP, &hup, nullptr);
  signal(SIGPIPE, SIG_IGN);

  int rc;
  {
    vigil::Agent agent(std::move(*config), vigil::AgentOptions{verbose});
    if (auto s = agent.start(); !s) {
      vigil::log::error("cannot start: {}", s.error().message);
      return 1;
    }
    rc = agent.run(g_stop, &g_reload);
  }  // the Agent's destructor detaches every program before we exit
  return rc;
}
