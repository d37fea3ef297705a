// The CLI's side of the control socket: one request line out, reply lines back.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace vigil::cli {

// Sends one request and calls `on_line` for each line back until EOF or it
// returns false. 0, or kExitUsage with the reason printed.
int request(const std::string& socket_path, const nlohmann::json& req,
            const std::function<bool(const std::string&)>& on_line);
// The same, and `on_tick` every `tick_ms` whether lines came or not (live views);
// either returning false ends it.
int request(const std::string& socket_path, const nlohmann::json& req,
            const std::function<bool(const std::string&)>& on_line, int tick_ms, const std::function<bool()>& on_tick);

// Replies of ask() made terminal-safe (make_terminal_safe): on for human output.
void terminal_safe_replies(bool on);
// One request, one JSON reply. Errors (no agent, no reply, {"error": …}) are
// printed and leave `rc` at kExitUsage.
std::optional<nlohmann::json> ask(const std::string& socket_path, const nlohmann::json& req, int& rc);

}  // namespace vigil::cli
