// How the CLI shows agent data to people: one readable line per event, and
// small formatting helpers the verbs share. (-o json prints what vigild sent.)
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace vigil::cli {

// "2026-11-22T08:30:00.123456789Z" -> "08:30:00.123456"
std::string short_time(const std::string& rfc3339);
// {"addr":"::1","port":80} -> "[::1]:80"
std::string endpoint_str(const nlohmann::json& e);
// One event as a table line: time, kind, pid/comm, what happened (terminal-safe).
std::string human_line(const nlohmann::json& event);

// Text for a person's terminal: C0 controls (newlines too), DEL and the C1
// controls (U+0080..U+009F) written as \xNN / \uNNNN, so that a Host header,
// a path or a comm cannot move the cursor, rewrite lines or set a title
// (security review F18). Everything else, UTF-8 included, stays.
std::string terminal_safe(std::string_view s);
// The same for every string (and object key) of `j`, in place.
void make_terminal_safe(nlohmann::json& j);

}  // namespace vigil::cli
