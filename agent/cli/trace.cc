// vigil trace: live events from vigild. pid, comm and kind are filtered by the
// agent; host, path, verdict and severity here, on each event's JSON.
#include <cstdio>

#include <fmt/format.h>

#include "agent/cli/cli.h"
#include "agent/cli/client.h"
#include "agent/cli/event_query.h"
#include "agent/cli/output.h"
#include "agent/control/protocol.h"

namespace vigil::cli {

void add_trace(CLI::App& app, const Globals& g, Verbs& verbs) {
  auto* trace = app.add_subcommand("trace", "stream live events");
  auto q = std::make_shared<EventQuery>();
  q->add_options(trace, false);
  verbs.push_back({trace, [&g, q] {
                     TraceFilter filter;
                     if (q->pid) filter.pid = q->pid;
                     filter.comm = q->comm;
                     filter.kinds = q->kinds;
                     std::setvbuf(stdout, nullptr, _IOLBF, 0);
                     return request(g.socket(), filter.to_json(), [&](const std::string& line) {
                       nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
                       if (e.is_discarded()) return true;
                       if (e.contains("error")) {
                         fmt::print(stderr, "vigil: {}\n", e["error"].get<std::string>());
                         return false;
                       }
                       if (!q->matches(e)) return true;
                       if (g.json()) {
                         std::fwrite(line.data(), 1, line.size(), stdout);
                         std::fputc('\n', stdout);
                       } else {
                         fmt::print("{}\n", human_line(e));
                       }
                       return !std::ferror(stdout);
                     });
                   }});
}

}  // namespace vigil::cli
