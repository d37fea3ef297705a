// "Did you mean" for unknown keys in configuration and policy files.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace vigil {

// " (did you mean 'x'?)" when `key` is within two edits of an allowed key,
// else " (expected one of: a, b, c)".
std::string suggest_key(std::string_view key, std::initializer_list<std::string_view> allowed);

}  // namespace vigil
