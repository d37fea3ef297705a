#include "base/yaml_guard.h"

#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace vigil {
namespace {

// Records where each document starts; node events are ignored.
struct DocumentStarts : YAML::EventHandler {
  YAML::Mark last_start;
  bool started = false;
  void OnDocumentStart(const YAML::Mark& mark) override {
    last_start = mark;
    started = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

Result<size_t> check_yaml(std::string_view text, std::string_view source) {
  size_t line = 1, col = 1;
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
      return Error{fmt::format("{}:{}:{}: control character 0x{:02x} is not allowed in YAML", source, line,
                               col, c)};
    if (c == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentStarts h;
  size_t docs = 0;
  int previous_pos = -1;
  try {
    while (parser.HandleNextDocument(h)) {
      // A document that starts where the previous one did consumed nothing:
      // the scanner is stuck on a token no document can hold.
      if (h.started && h.last_start.pos == previous_pos)
        return Error{fmt::format("{}:{}:{}: unexpected character here (a stray ',' ?)", source,
                                 h.last_start.line + 1, h.last_start.column + 1)};
      previous_pos = h.last_start.pos;
      ++docs;
    }
  } catch (const YAML::Exception& e) {
    return Error{fmt::format("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg)};
  }
  return docs;
}

}  // namespace vigil
