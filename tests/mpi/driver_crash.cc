// A driver that aborts after raympi::Init: the job must end with a message naming the signal
// and a non-zero exit, leaving nothing running.
#include <raympi/raympi.h>

#include <cstdlib>

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  std::abort();
}
