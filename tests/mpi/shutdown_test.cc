// raympi::Shutdown ends the job while the driver goes on: the API refuses further use. The
// job's exit code is settled at Shutdown (mpirun does not see the driver's later exit), so the
// test checks the printed count of failed checks.
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
  return raympi_test::Failures();
}
