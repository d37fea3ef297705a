// How the CLI shows agent data to people: one readable line per event, and
// small formatting helpers the verbs share. (-o json prints what vigild sent.)
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace vigil::cli {

// "2026-11-22T08:30:00.123456789Z" -> "08:30:00.123456"
std::string short_time(const std::string& rfc3339);
// {"addr":"::1","port":80} -> "[::1]:80"
std::string endpoint_str(const nlohmann::json& e);
// One event as a table line: time, kind, pid/comm, what happened.
std::string human_line(const nlohmann::json& event);

}  // namespace vigil::cli
