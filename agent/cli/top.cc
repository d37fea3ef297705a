// vigil top: live per-process and per-endpoint API call rates, errors and
// latency from vigild's event stream, refreshed in place like top(1); --once
// prints one interval as plain text (or JSON with -o json) for scripts.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "agent/cli/cli.h"
#include "agent/cli/client.h"
#include "agent/cli/event_query.h"
#include "agent/cli/top_table.h"
#include "agent/control/protocol.h"

namespace vigil::cli {

void add_top(CLI::App& app, const Globals& g, Verbs& verbs) {
  auto* top = app.add_subcommand("top", "live API call rates, errors and latency per process and endpoint");
  auto q = std::make_shared<EventQuery>();
  q->add_options(top, false);
  auto interval = std::make_shared<double>(2.0);
  auto once = std::make_shared<bool>(false);
  auto rows = std::make_shared<size_t>(15);
  top->add_option("-d,--interval", *interval, "seconds per refresh (default 2)")->check(CLI::Range(0.1, 3600.0));
  top->add_flag("--once", *once, "print one interval and exit (plain text, no screen control)");
  top->add_option("-n,--rows", *rows, "rows per table (default 15)")->check(CLI::Range(1, 10000));
  verbs.push_back({top, [&g, q, interval, once, rows] {
                     TraceFilter filter;
                     if (q->pid) filter.pid = q->pid;
                     filter.comm = q->comm;
                     filter.kinds = {"api_call"};
                     TopTable table;
                     bool tty = !*once && !g.json() && isatty(STDOUT_FILENO);
                     auto started = std::chrono::steady_clock::now();
                     std::string failure;
                     auto show = [&] {
                       auto now = std::chrono::steady_clock::now();
                       double secs = std::chrono::duration<double>(now - started).count();
                       started = now;
                       if (g.json()) {
                         fmt::print("{}\n", table.to_json(secs, *rows).dump());
                       } else {
                         if (tty) fmt::print("\x1b[H\x1b[2J");  // home, clear: refresh in place
                         fmt::print("{}", table.render(secs, *rows));
                         if (!*once) fmt::print("\n");
                       }
                       std::fflush(stdout);
                       table.clear();
                       return !*once && !std::ferror(stdout);
                     };
                     int rc = request(
                         g.socket(), filter.to_json(),
                         [&](const std::string& line) {
                           nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
                           if (e.is_discarded()) return true;
                           if (e.contains("error")) {
                             failure = e["error"].is_string() ? e["error"].get<std::string>() : e["error"].dump();
                             return false;
                           }
                           if (q->matches(e)) table.add(e);
                           return true;
                         },
                         static_cast<int>(*interval * 1000), show);
                     if (!failure.empty()) {
                       fmt::print(stderr, "vigil: {}\n", failure);
                       return kExitUsage;
                     }
                     return rc;
                   }});
}

}  // namespace vigil::cli
