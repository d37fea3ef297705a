// The hash chain of file sinks: sealed across rotations and restarts it verifies
// clean; each kind of tampering is named with its file and line.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/audit/chain.h"
#include "agent/audit/checkpoint.h"
#include "agent/sinks/outputs.h"
#include "base/file.h"
#include "base/zstd_file.h"

namespace vigil {
namespace {

using audit::verify;
using audit::with_rotated;

class ChainFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/vigil-audit-XXXXXX";
    dir_ = mkdtemp(t);
    path_ = dir_ + "/events.jsonl";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // One agent run: an output opened (epoch record), `n` events written, closed.
  void run(uint64_t first, uint64_t n, const std::string& key = "") {
    sinks::FileOptions o;
    o.path = path_;
    o.max_bytes = max_bytes_;
    o.max_files = 10;
    o.chain = true;
    o.zstd = zstd_;
    o.hmac_key = key;
    o.node = "node-1";
    o.boot_id = fmt::format("boot-{}", first);
    auto f = sinks::FileOutput::open(o);
    ASSERT_TRUE(f) << f.error().message;
    std::vector<sinks::Record> batch;
    for (uint64_t s = first; s < first + n; ++s) {
      sinks::Record r;
      r.seq = s;
      r.line = fmt::format("{{\"v\":1,\"kind\":\"connection\",\"seq\":{},\"pad\":\"{}\"}}", s, std::string(100, 'p'));
      batch.push_back(std::move(r));
    }
    auto d = (*f)->deliver(batch);
    ASSERT_EQ(d.delivered, n) << d.error;
  }

  std::vector<std::string> lines(const std::string& p) {
    std::vector<std::string> out;
    std::ifstream in(p);
    std::string l;
    while (std::getline(in, l)) out.push_back(l);
    return out;
  }
  void write_lines(const std::string& p, const std::vector<std::string>& ls) {
    std::ofstream out(p, std::ios::trunc);
    for (const auto& l : ls) out << l << "\n";
  }
  std::string first_issue(const std::string& key = "") {
    auto v = verify(with_rotated(path_), key);
    return v.issues.empty() ? "" : fmt::format("{}:{}: {}", std::filesystem::path(v.issues[0].file).filename().string(),
                                               v.issues[0].line, v.issues[0].what);
  }

  std::string dir_, path_;
  uint64_t max_bytes_ = 1 << 20;  // 8000: a rotation every ~25 lines
  bool zstd_ = false;
};

TEST_F(ChainFiles, HoldsAcrossRotationsAndRestarts) {
  max_bytes_ = 8000;
  run(1, 100);
  run(101, 100);  // a restart: an epoch record continues the chain
  auto files = with_rotated(path_);
  ASSERT_GE(files.size(), 4u) << "three rotations and more";
  auto v = verify(files, "");
  EXPECT_TRUE(v.issues.empty()) << v.issues[0].file << ":" << v.issues[0].line << ": " << v.issues[0].what;
  EXPECT_EQ(v.epochs, 2u);
  EXPECT_EQ(v.lines, 202u);
  EXPECT_EQ(v.last_seq, 200u);
  EXPECT_TRUE(v.notes.empty()) << "the oldest file starts the chain: " << v.notes[0];
  // The second run's epoch names the file and hash it continues.
  bool found = false;
  for (const auto& f : files)
    for (const auto& l : lines(f))
      if (l.find("\"kind\":\"epoch\"") != std::string::npos && l.find("boot-101") != std::string::npos) {
        found = true;
        EXPECT_NE(l.find("\"prev_file\":\"events.jsonl"), std::string::npos) << l;
        EXPECT_EQ(l.find(std::string(audit::kGenesis) + "\",\"cut"), std::string::npos) << l;
      }
  EXPECT_TRUE(found);
}

TEST_F(ChainFiles, CompressedRotatedFilesVerifyAndACorruptOneIsNamed) {
  max_bytes_ = 8000;
  zstd_ = true;
  run(1, 100);
  run(101, 100);  // resumes from PATH.1.zst when PATH is fresh, else from PATH
  auto files = with_rotated(path_);
  ASSERT_GE(files.size(), 4u);
  for (size_t i = 0; i + 1 < files.size(); ++i) {
    EXPECT_TRUE(files[i].ends_with(".zst")) << files[i];
    auto packed = read_file(files[i]);
    EXPECT_TRUE(packed && is_zstd(*packed)) << files[i];
    EXPECT_FALSE(std::filesystem::exists(files[i].substr(0, files[i].size() - 4))) << "the plain copy is removed";
  }
  auto v = verify(files, "");
  EXPECT_TRUE(v.issues.empty()) << v.issues[0].file << ":" << v.issues[0].line << ": " << v.issues[0].what;
  EXPECT_EQ(v.lines, 202u);
  EXPECT_EQ(v.last_seq, 200u);
  // Every line, in order, through the reader `vigil events` uses.
  std::vector<uint64_t> seqs;
  for (const auto& f : files)
    ASSERT_TRUE(for_each_line(f, [&](std::string_view l) {
      auto j = nlohmann::json::parse(l);
      if (j["kind"] == "connection") seqs.push_back(j["seq"].get<uint64_t>());
      return true;
    }).ok());
  ASSERT_EQ(seqs.size(), 200u);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
  // A compressed file cut short is named, not read as if whole.
  auto packed = read_file(files[1]);
  ASSERT_TRUE(packed);
  {
    std::ofstream out(files[1], std::ios::trunc | std::ios::binary);
    out.write(packed->data(), static_cast<std::streamsize>(packed->size() / 2));
  }
  v = verify(files, "");
  ASSERT_FALSE(v.issues.empty());
  EXPECT_EQ(v.issues[0].file, files[1]);
  EXPECT_NE(v.issues[0].what.find("zstd"), std::string::npos) << v.issues[0].what;
}

TEST_F(ChainFiles, APlainRotatedFileLeftByACrashIsCompressedAtTheNextStart) {
  max_bytes_ = 8000;
  run(1, 40);  // one rotation, plain
  ASSERT_TRUE(std::filesystem::exists(path_ + ".1"));
  zstd_ = true;
  run(41, 5);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path_ + ".1.zst"));
  auto v = verify(with_rotated(path_), "");
  EXPECT_TRUE(v.issues.empty()) << v.issues[0].file << ":" << v.issues[0].line << ": " << v.issues[0].what;
  EXPECT_EQ(v.last_seq, 45u);
}

TEST_F(ChainFiles, NamesAnEditedByte) {
  run(1, 30);
  auto ls = lines(path_);
  ls[10][30] = ls[10][30] == 'p' ? 'q' : 'p';
  write_lines(path_, ls);
  EXPECT_EQ(first_issue(), "events.jsonl:11: modified: its content does not match its hash");
}

TEST_F(ChainFiles, NamesADeletedLine) {
  run(1, 30);
  auto ls = lines(path_);
  ls.erase(ls.begin() + 12);
  write_lines(path_, ls);
  EXPECT_EQ(first_issue().rfind("events.jsonl:13: deleted: a line is missing between line 12", 0), 0u) << first_issue();
}

TEST_F(ChainFiles, NamesAnInsertedLineSealedOrNot) {
  run(1, 30);
  auto ls = lines(path_);
  auto plain = ls;
  plain.insert(plain.begin() + 5, R"({"v":1,"kind":"connection","seq":999})");
  write_lines(path_, plain);
  EXPECT_EQ(first_issue().rfind("events.jsonl:6: not chained", 0), 0u) << first_issue();
  // A forger who recomputes a seal for the inserted line (SHA-256 needs no key).
  std::string_view body, prev, hash;
  ASSERT_TRUE(audit::unseal(ls[4], body, prev, hash));
  audit::Chain forger("", std::string(hash));
  std::string forged;
  forger.seal(R"({"v":1,"kind":"connection","seq":999})", forged);
  auto sealed = ls;
  sealed.insert(sealed.begin() + 5, forged);
  write_lines(path_, sealed);
  EXPECT_EQ(first_issue().rfind("events.jsonl:6: inserted", 0), 0u) << first_issue();
}

TEST_F(ChainFiles, NamesSwappedLines) {
  run(1, 30);
  auto ls = lines(path_);
  std::swap(ls[7], ls[8]);
  write_lines(path_, ls);
  EXPECT_EQ(first_issue().rfind("events.jsonl:8: reordered: it follows line 9 of", 0), 0u) << first_issue();
}

TEST_F(ChainFiles, NamesADeletedRotatedFile) {
  max_bytes_ = 8000;
  run(1, 200);
  ASSERT_TRUE(std::filesystem::exists(path_ + ".3"));
  std::filesystem::remove(path_ + ".2");
  EXPECT_NE(first_issue().find("does not continue"), std::string::npos) << first_issue();
  EXPECT_NE(first_issue().find("a rotated file is missing"), std::string::npos) << first_issue();
}

TEST_F(ChainFiles, WithAKeyOnlyTheKeyVerifies) {
  const std::string key = "0123456789abcdef-secret";
  run(1, 20, key);
  EXPECT_EQ(first_issue(key), "");
  EXPECT_NE(first_issue("another key, 16+ bytes").find("or the HMAC key is not the agent's"), std::string::npos);
}

TEST_F(ChainFiles, ATornLastLineIsCutAndNamedAtTheNextStart) {
  run(1, 10);
  const std::string torn = R"({"v":1,"kind":"connection","seq":11,"pa)";  // SIGKILL mid-write
  {
    std::ofstream out(path_, std::ios::app);
    out << torn;
  }
  run(11, 5);
  EXPECT_EQ(first_issue(), "");
  auto ls = lines(path_);
  bool named = false;
  for (const auto& l : ls) named = named || (l.find("\"kind\":\"epoch\"") != std::string::npos && l.find(fmt::format("\"cut_bytes\":{}", torn.size())) != std::string::npos);
  EXPECT_TRUE(named) << "the epoch record names the cut";
}

TEST_F(ChainFiles, ACheckpointCatchesATruncatedTailAndAForgedSignature) {
  run(1, 40);
  auto ls = lines(path_);
  std::string_view body, prev, hash;
  ASSERT_TRUE(audit::unseal(ls.back(), body, prev, hash));
  std::array<uint8_t, 32> seed{};
  seed.fill(7);
  audit::Signer signer = audit::Signer::from_seed(seed);
  audit::Checkpoint c{"audit", "events.jsonl", 40, std::string(hash), "2026-12-02T05:00:00.000000000Z", "node-1", "boot-1", ""};
  signer.sign(c);
  EXPECT_TRUE(audit::verify_signature(c, signer.public_hex()));
  auto parsed = audit::parse_checkpoint(audit::to_json_line(c));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->signed_text(), c.signed_text());

  auto check = [&](std::vector<audit::Checkpoint> cps) {
    auto v = verify(with_rotated(path_), "");
    audit::check_against(with_rotated(path_), cps, signer.public_hex(), v);
    return v.issues.empty() ? std::string() : v.issues[0].what;
  };
  EXPECT_EQ(check({c}), "") << "the intact file holds the checkpointed line";
  ls.resize(ls.size() - 5);  // the tail cut: the chain that is left still verifies...
  write_lines(path_, ls);
  EXPECT_TRUE(verify(with_rotated(path_), "").issues.empty());
  EXPECT_EQ(check({c}).rfind("truncated: the checkpoint of 2026-12-02T05:00:00", 0), 0u) << check({c});  // ...not this
  audit::Checkpoint forged = c;
  forged.seq = 30;
  EXPECT_NE(check({forged}).find("signature does not verify"), std::string::npos) << check({forged});
}

}  // namespace
}  // namespace vigil
