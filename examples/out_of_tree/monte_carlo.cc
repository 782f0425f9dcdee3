// Estimates pi with remote tasks: each task throws darts with its own seed.
#include <raympi/raympi.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

long Hits(long darts, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  long hits = 0;
  for (long i = 0; i < darts; ++i) {
    double x = u(rng), y = u(rng);
    hits += x * x + y * y <= 1.0;
  }
  return hits;
}
RAYMPI_REMOTE(Hits);

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  const long darts = 200000;
  std::vector<raympi::ObjectRef<long>> refs;
  for (unsigned seed = 0; seed < 16; ++seed) refs.push_back(raympi::Task(Hits).Remote(darts, seed));
  long hits = 0;
  for (const auto& h : raympi::Get(refs)) hits += *h;
  double pi = 4.0 * hits / (darts * refs.size());
  std::printf("pi ~ %.4f\n", pi);
  return std::fabs(pi - M_PI) < 0.01 ? 0 : 1;
}
