// vigil: the investigation CLI; talks to vigild over its control socket, and
// works on policy and event files without it. One file per verb.
#include <csignal>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/cli/cli.h"
#include "agent/cli/client.h"
#include "agent/vigild/version.h"

int main(int argc, char** argv) {
  using namespace vigil::cli;
  CLI::App app{"vigil — investigate API traffic and egress on this host"};
  app.require_subcommand(1);
  // Global flags work before or after the verb (`vigil status --socket X`).
  app.fallthrough();
  Globals g;
  app.add_option("--socket", g.socket_flag, "control socket of vigild");
  app.add_option("--config", g.config_path, "vigild configuration (for its control_socket)");
  app.add_option("-o,--output", g.output, "table | json | yaml")->check(CLI::IsMember({"table", "json", "yaml"}));
  app.set_version_flag("-V,--version", fmt::format("vigil {}", VIGIL_VERSION));

  Verbs verbs;
  add_status(app, g, verbs);
  add_trace(app, g, verbs);
  add_policy(app, g, verbs);
  add_map(app, g, verbs);
  add_audit(app, g, verbs);
  add_events(app, g, verbs);
  add_top(app, g, verbs);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  signal(SIGPIPE, SIG_IGN);
  terminal_safe_replies(g.output == "table");  // JSON and YAML are for programs: as vigild sent them
  for (const auto& v : verbs) {
    if (!v.command->parsed()) continue;
    try {
      return v.run();
    } catch (const nlohmann::json::exception& e) {
      fmt::print(stderr, "vigil: unexpected reply from vigild: {}\n", e.what());
      return kExitUsage;
    }
  }
  return kExitUsage;
}
