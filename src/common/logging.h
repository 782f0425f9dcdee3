// Logging through spdlog: one stderr logger per process, named after its role.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace raympi {

// Level comes from `level` when given, else RAYMPI_LOG_LEVEL, else "warn".
void InitLogging(const std::string& role, const std::string& level = "");

}  // namespace raympi

#define RAYMPI_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define RAYMPI_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define RAYMPI_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define RAYMPI_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
