// vigil events: query local event files (a file sink's live and rotated files)
// without the agent: the same filters as trace, plus a time window.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include "base/zstd_file.h"

#include <fmt/format.h>

#include "agent/cli/cli.h"
#include "agent/cli/event_query.h"
#include "agent/cli/output.h"
#include "base/clock.h"

namespace vigil::cli {

void add_events(CLI::App& app, const Globals& g, Verbs& verbs) {
  auto* cmd = app.add_subcommand("events", "query event files (JSON lines; rotated and zstd-compressed ones too) without the agent");
  auto q = std::make_shared<EventQuery>();
  auto files = std::make_shared<std::vector<std::string>>();
  q->add_options(cmd, true);
  cmd->add_option("files", *files, "event files (read oldest first, by modification time)")->required();
  verbs.push_back({cmd, [&g, q, files] {
                     if (auto st = q->resolve(BootClock::now_wall_ns()); !st) {
                       fmt::print(stderr, "vigil events: {}\n", st.error().message);
                       return kExitUsage;
                     }
                     // Rotated files are older than the live one: mtime order reads them in sequence.
                     std::vector<std::pair<int64_t, std::string>> order;
                     for (const auto& f : *files) {
                       struct stat sb{};
                       if (::stat(f.c_str(), &sb) != 0) {
                         fmt::print(stderr, "vigil events: {}: {}\n", f, std::strerror(errno));
                         return kExitUsage;
                       }
                       order.emplace_back(int64_t{sb.st_mtim.tv_sec} * 1'000'000'000 + sb.st_mtim.tv_nsec, f);
                     }
                     std::stable_sort(order.begin(), order.end(),
                                      [](const auto& a, const auto& b) { return a.first < b.first; });
                     uint64_t shown = 0, malformed = 0;
                     for (const auto& [mtime, f] : order) {
                       auto st = for_each_line(f, [&](std::string_view line) {
                         if (line.empty()) return true;
                         nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
                         if (e.is_discarded()) {
                           ++malformed;
                           return true;
                         }
                         if (e.value("kind", "") == "epoch" || !q->matches(e)) return true;  // epoch: the chain's
                         ++shown;
                         if (g.json()) fmt::print("{}\n", line);
                         else fmt::print("{}\n", human_line(e));
                         return !std::ferror(stdout);
                       });
                       if (!st) {
                         fmt::print(stderr, "vigil events: {}\n", st.error().message);
                         return kExitUsage;
                       }
                     }
                     if (malformed) fmt::print(stderr, "vigil events: {} line(s) were not JSON (skipped)\n", malformed);
                     return kExitOk;
                   }});
}

}  // namespace vigil::cli
