// vigil, the investigation CLI: what every verb shares. Each verb lives in its
// own file and registers its subcommands with add_*(); main() runs the one parsed.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace vigil::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitCheckFailed = 1;  // e.g. policy validate found errors (a CI gate)
inline constexpr int kExitUsage = 2;        // usage or connection error

// Flags accepted before or after the verb (DESIGN.md §7).
struct Globals {
  std::string socket_flag;
  std::string config_path;
  std::string output = "table";  // table | json | yaml (map export)

  bool json() const { return output == "json"; }
  // --socket, else the control_socket of --config (or /etc/vigil/vigil.yaml), else the default.
  std::string socket() const;
};

struct Verb {
  CLI::App* command;
  std::function<int()> run;
};
using Verbs = std::vector<Verb>;

// Where `vigil map` and `policy generate --from-inventory` read the inventory:
// an exported file, else vigild; filtered by service and role.
struct InventorySource {
  std::string from;
  std::string service, role;
};
std::optional<nlohmann::json> load_inventory(const Globals& g, const InventorySource& s, int& rc);

void add_status(CLI::App& app, const Globals& g, Verbs& verbs);
void add_trace(CLI::App& app, const Globals& g, Verbs& verbs);
void add_policy(CLI::App& app, const Globals& g, Verbs& verbs);
void add_map(CLI::App& app, const Globals& g, Verbs& verbs);
void add_audit(CLI::App& app, const Globals& g, Verbs& verbs);
void add_events(CLI::App& app, const Globals& g, Verbs& verbs);
void add_top(CLI::App& app, const Globals& g, Verbs& verbs);

}  // namespace vigil::cli
