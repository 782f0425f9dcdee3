#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>

namespace raympi {

void InitLogging(const std::string& role, const std::string& level) {
  std::string name = level;
  if (name.empty()) {
    const char* env = std::getenv("RAYMPI_LOG_LEVEL");
    name = env ? env : "warn";
  }
  auto logger = spdlog::stderr_color_mt("raympi-" + role);
  logger->set_pattern("[raympi %l " + role + "] %v");
  logger->set_level(spdlog::level::from_str(name));
  spdlog::set_default_logger(logger);
}

}  // namespace raympi
