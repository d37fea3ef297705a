// vigil audit verify: checks the hash chain of a file sink's files (no agent
// needed) and names the first modified, deleted, inserted or reordered line and
// a missing or out-of-order rotated file. Exit 0 clean, 1 tampered, 2 usage.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "agent/audit/chain.h"
#include "agent/audit/checkpoint.h"
#include "agent/cli/cli.h"
#include "base/fd.h"
#include "base/file.h"

namespace vigil::cli {
namespace {

struct VerifyArgs {
  std::vector<std::string> files;
  std::string hmac_key_file;
  std::string key;         // the checkpoints' public key: hex, or a file holding it
  std::vector<std::string> checkpoints;  // checkpoints/<sink>.jsonl, or event files with checkpoint events
  std::string sink;                      // which sink's checkpoints, when they are of several
};


int keygen(const std::string& out) {
  if (std::filesystem::exists(out)) {
    fmt::print(stderr, "vigil error: {} exists; a signing key is not overwritten\n", out);
    return kExitUsage;
  }
  auto [seed, pub] = audit::generate_key();
  Fd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd || ::write(fd.get(), (seed + "\n").data(), seed.size() + 1) != static_cast<ssize_t>(seed.size() + 1)) {
    fmt::print(stderr, "vigil error: {}\n", os_error("write " + out).message);
    return kExitUsage;
  }
  if (auto st = write_file_atomic(out + ".pub", pub + "\n"); !st) {
    fmt::print(stderr, "vigil error: {}\n", st.error().message);
    return kExitUsage;
  }
  fmt::print("signing key: {} (mode 0600; set audit.signing_key to it)\npublic key: {} (also in {}.pub)\n", out, pub,
             out);
  return kExitOk;
}

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
  std::string pub = a.key;
  if (!pub.empty() && std::filesystem::exists(pub)) {
    auto text = read_file(pub);
    pub = text ? trim_right(*text) : "";
  }
  if (!a.checkpoints.empty()) {
    std::vector<audit::Checkpoint> cps;
    for (const auto& f : a.checkpoints) {
      auto text = read_file(f);
      if (!text) {
        fmt::print(stderr, "vigil error: --checkpoint: {}\n", text.error().message);
        return kExitUsage;
      }
      size_t start = 0;
      while (start < text->size()) {
        size_t nl = text->find('\n', start);
        if (nl == std::string::npos) nl = text->size();
        std::string_view line(text->data() + start, nl - start);
        std::string_view body, prev, hash;
        if (audit::unseal(line, body, prev, hash)) line = body;  // a checkpoint event in a chained file
        std::string json(line);
        if (line.data() != text->data() + start) json += '}';
        if (auto c = audit::parse_checkpoint(json)) cps.push_back(*c);
        start = nl + 1;
      }
    }
    if (!a.sink.empty())
      cps.erase(std::remove_if(cps.begin(), cps.end(), [&](auto& c) { return c.sink != a.sink; }), cps.end());
    if (cps.empty()) {
      fmt::print(stderr, "vigil error: no checkpoints{} in {}\n", a.sink.empty() ? "" : " of sink " + a.sink,
                 fmt::join(a.checkpoints, ", "));
      return kExitUsage;
    }
    if (auto sinks = audit::sinks_of(cps); sinks.size() > 1) {
      fmt::print(stderr, "vigil error: the checkpoints are of several sinks ({}): say which chain this is with --sink\n",
                 fmt::join(sinks, ", "));
      return kExitUsage;
    }
    if (pub.empty()) v.notes.push_back("checkpoint signatures not checked (no --key)");
    audit::check_against(files, cps, pub, v);
    v.notes.push_back(fmt::format("{} checkpoints checked", cps.size()));
  }
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
  v->add_option("--key", args->key, "the checkpoints' public key (hex, or its .pub file)");
  v->add_option("--checkpoint", args->checkpoints, "checkpoints.jsonl, or files with checkpoint events")
      ->check(CLI::ExistingFile);
  v->add_option("--sink", args->sink, "the file sink these files are of, when the checkpoints are of several");
  verbs.push_back({v, [&g, args] { return verify(g, *args); }});
  auto* k = audit->add_subcommand("keygen", "make the Ed25519 key that signs checkpoints (audit.signing_key)");
  auto out = std::make_shared<std::string>();
  k->add_option("--out", *out, "where to write the private key (0600; the public key goes to OUT.pub)")->required();
  verbs.push_back({k, [out] { return keygen(*out); }});
}

}  // namespace vigil::cli
