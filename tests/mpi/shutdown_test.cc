// raympi::Shutdown ends the job while the driver goes on: the API refuses further use, and the
// driver's own exit code is still the job's. Exits with 3 on success (checked by the test), so a
// driver that wrongly reported 0 fails it.
#include <raympi/raympi.h>

#include <cstdio>

#include "check.h"

int Twice(int x) { return 2 * x; }
RAYMPI_REMOTE(Twice);

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  CHECK(*raympi::Get(raympi::Task(Twice).Remote(21)) == 42);
  raympi::Shutdown();
  CHECK(!raympi::IsInitialized());
  CHECK_THROWS(raympi::Error, "after raympi::Shutdown", raympi::Task(Twice).Remote(1));
  raympi::Shutdown();  // a second call is harmless
  std::printf("shutdown_test: %d failure(s)\n", raympi_test::Failures());
  return raympi_test::Failures() == 0 ? 3 : 1;
}
