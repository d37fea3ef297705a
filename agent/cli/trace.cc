// vigil trace: live events from vigild, filtered by pid, comm and kind.
#include <cstdio>

#include <fmt/format.h>

#include "agent/cli/cli.h"
#include "agent/cli/client.h"
#include "agent/cli/output.h"
#include "agent/config/config.h"
#include "agent/control/protocol.h"

namespace vigil::cli {

void add_trace(CLI::App& app, const Globals& g, Verbs& verbs) {
  auto* trace = app.add_subcommand("trace", "stream live events");
  auto filter = std::make_shared<TraceFilter>();
  auto pid = std::make_shared<uint32_t>(0);
  trace->add_option("--pid", *pid, "only events of this process");
  trace->add_option("--comm", filter->comm, "only events of processes with this comm");
  trace->add_option("--kind", filter->kinds, "only these kinds (repeatable)")->check(CLI::IsMember(all_event_kinds()));
  verbs.push_back({trace, [&g, filter, pid] {
                     if (*pid) filter->pid = *pid;
                     std::setvbuf(stdout, nullptr, _IOLBF, 0);
                     return request(g.socket(), filter->to_json(), [&](const std::string& line) {
                       if (g.json()) {
                         std::fwrite(line.data(), 1, line.size(), stdout);
                         std::fputc('\n', stdout);
                         return !std::ferror(stdout);
                       }
                       nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
                       if (e.is_discarded()) return true;
                       if (e.contains("error")) {
                         fmt::print(stderr, "vigil: {}\n", e["error"].get<std::string>());
                         return false;
                       }
                       fmt::print("{}\n", human_line(e));
                       return !std::ferror(stdout);
                     });
                   }});
}

}  // namespace vigil::cli
