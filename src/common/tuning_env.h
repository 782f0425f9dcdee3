// The RAYMPI_* tuning variables (README, "Tuning variables"): checked by the launcher before
// any process starts, so a typo is a usage error instead of a silently different setting in
// every worker that reads it.
#pragma once

#include <cstdlib>
#include <functional>
#include <string>

#include "common/status.h"

namespace raympi {

// OK when every RAYMPI_* integer variable that `lookup` finds (the environment by default) is a
// whole number within its range; otherwise names the first bad one, its value and the range.
Status CheckTuningEnvironment(const std::function<const char*(const char*)>& lookup =
                                  [](const char* name) {
                                    return static_cast<const char*>(std::getenv(name));
                                  });

}  // namespace raympi
