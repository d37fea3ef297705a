// The egress state that outlives the agent: the pinned programs, links and maps
// under <pin_root>/egress-v<ABI>/, and the "disabled" marker in data_dir that
// keeps a restarted agent from enforcing again. The one owner of their names,
// used by the agent, the kernel enforcer and `vigil policy disable`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vigil::policy {

class EgressPins {
 public:
  EgressPins(std::string pin_root, std::string data_dir)
      : pin_root_(std::move(pin_root)), data_dir_(std::move(data_dir)) {}

  static constexpr std::string_view kStateMap = "eg_state";  // the switch every program reads first

  const std::string& root() const { return pin_root_; }
  // The directory of this build's layout: <pin_root>/egress-v<VIGIL_EGRESS_ABI_VERSION>.
  std::string dir() const;
  // Pins of any layout are present (an earlier agent left enforcement on).
  bool exist() const;
  // This layout's pins are present: a new enforcer adopts them.
  bool adoptable() const;
  // Stops every layout's programs from judging (eg_state zeroed), unlinks every
  // pin and removes the directories; returns how many pinned objects went.
  // Uses two raw bpf(2) commands, so that callers need no libbpf.
  Result<size_t> remove() const;
  // Unlinks the pins of layouts other than this build's (once ours enforce);
  // returns the directories removed.
  Result<std::vector<std::string>> remove_other_layouts() const;
  // Unlinks every pin in one layout's directory and removes it, and the root
  // when nothing else is in it.
  static Result<size_t> remove_dir(const std::string& dir);

  bool disabled() const;
  Status mark_disabled() const;
  void clear_disabled() const;

 private:
  std::string marker() const;

  std::string pin_root_;
  std::string data_dir_;
};

}  // namespace vigil::policy
