// vigil audit verify: checks the hash chain of a file sink's files (no agent
// needed) and names the first modified, deleted, inserted or reordered line and
// a missing or out-of-order rotated file. Exit 0 clean, 1 tampered, 2 usage.
#include <filesystem>

#include "agent/audit/chain.h"
#include "agent/cli/cli.h"
#include "base/file.h"

namespace vigil::cli {
namespace {

struct VerifyArgs {
  std::vector<std::string> files;
  std::string hmac_key_file;
};

int verify(const Globals& g, const VerifyArgs& a) {
  std::string key;
  if (!a.hmac_key_file.empty()) {
    auto k = read_file(a.hmac_key_file);
    if (!k) {
      fmt::print(stderr, "vigil error: --hmac-key: {}\n", k.error().message);
      return kExitUsage;
    }
    key = std::move(*k);
  }
  // One file: it and its rotated siblings (PATH.N .. PATH.1, PATH), oldest first.
  std::vector<std::string> files = a.files.size() == 1 ? audit::with_rotated(a.files[0]) : a.files;
  for (const auto& f : files)
    if (!std::filesystem::exists(f) && a.files.size() > 1) {
      fmt::print(stderr, "vigil error: {}: no such file\n", f);
      return kExitUsage;
    }
  audit::Verified v = audit::verify(files, key);
  if (g.json()) {
    nlohmann::json issues = nlohmann::json::array();
    for (const auto& i : v.issues) issues.push_back({{"file", i.file}, {"line", i.line}, {"what", i.what}});
    nlohmann::json out = {{"ok", v.issues.empty()}, {"files", files}, {"lines", v.lines}, {"epochs", v.epochs},
                          {"last_seq", v.last_seq}, {"last_hash", v.last_hash}, {"issues", issues},
                          {"notes", v.notes}};
    fmt::print("{}\n", out.dump(2));
  } else {
    for (const auto& i : v.issues)
      fmt::print("{}{}: {}\n", i.file, i.line ? fmt::format(":{}", i.line) : "", i.what);
    for (const auto& n : v.notes) fmt::print("note: {}\n", n);
    fmt::print("{}: {} files, {} lines, {} agent starts (epochs), last seq {}, last hash {}\n",
               v.issues.empty() ? "chain intact"
                               : fmt::format("TAMPERED ({} issue{})", v.issues.size(), v.issues.size() == 1 ? "" : "s"), v.files,
               v.lines, v.epochs, v.last_seq, v.last_hash.empty() ? "-" : v.last_hash);
  }
  return v.issues.empty() ? kExitOk : kExitCheckFailed;
}

}  // namespace

void add_audit(CLI::App& app, const Globals& g, Verbs& verbs) {
  auto* audit = app.add_subcommand("audit", "the tamper evidence of event files");
  audit->require_subcommand(1);
  auto* v = audit->add_subcommand("verify", "check the hash chain of event files (one FILE: with its rotated ones)");
  auto args = std::make_shared<VerifyArgs>();
  v->add_option("files", args->files, "event files, oldest first (one: PATH.N .. PATH.1 PATH)")->required();
  v->add_option("--hmac-key", args->hmac_key_file, "the audit.key_file the agent chained with");
  verbs.push_back({v, [&g, args] { return verify(g, *args); }});
}

}  // namespace vigil::cli
