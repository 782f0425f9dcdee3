// The RAYMPI_* tuning variables (README, "Tuning variables"): checked by the launcher before
// any process starts, so a typo is a usage error instead of a silently different setting in
// every worker that reads it; read through TuningInt by every process that uses one.
#pragma once

#include <cstdlib>
#include <functional>
#include <string>

#include "common/status.h"

namespace raympi {

// Finds an environment variable: the process environment, or a fake in tests.
using EnvLookup = std::function<const char*(const char*)>;
inline const char* ProcessEnv(const char* name) { return std::getenv(name); }

// OK when every RAYMPI_* integer variable that `lookup` finds (the environment by default) is a
// whole number within its range; otherwise names the first bad one, its value and the range.
Status CheckTuningEnvironment(const EnvLookup& lookup = ProcessEnv);

// The value of a tuning variable CheckTuningEnvironment knows, or `fallback` when it is unset or
// not valid (the launcher refuses a bad value; a process started some other way keeps the
// default rather than a half-parsed number). A name not in the table aborts the process.
int TuningInt(const char* name, int fallback, const EnvLookup& lookup = ProcessEnv);

}  // namespace raympi
