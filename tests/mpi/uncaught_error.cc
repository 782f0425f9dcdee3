// A driver that does not catch a failed task's error: the job must end with a non-zero exit
// and a message naming the task and its cause.
#include <raympi/raympi.h>

#include <stdexcept>

int Explode(int x) { throw std::invalid_argument("cannot explode " + std::to_string(x)); }
RAYMPI_REMOTE(Explode);

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  return *raympi::Get(raympi::Task(Explode).Remote(42));
}
