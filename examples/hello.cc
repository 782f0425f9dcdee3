// The walking-skeleton example: remote tasks, ObjectRef arguments, Put, Get, Wait and a
// chunked map.
//   mpirun -n 3 raympi ./examples/hello
#include <raympi/raympi.h>

#include <cstdio>
#include <numeric>
#include <vector>

int Square(int x) { return x * x; }

std::vector<double> Scale(std::vector<double> v, double k) {
  for (double& x : v) x *= k;
  return v;
}

double Sum(std::vector<double> v) { return std::accumulate(v.begin(), v.end(), 0.0); }

RAYMPI_REMOTE(Square, Scale, Sum);

int main(int argc, char** argv) {
  raympi::Init(argc, argv);

  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < 100; ++i) refs.push_back(raympi::Task(Square).Remote(i));
  auto values = raympi::Get(refs);
  long total = 0;
  for (const auto& v : values) total += *v;
  std::printf("sum of squares 0..99 = %ld\n", total);

  auto data = raympi::Put(std::vector<double>(1 << 20, 1.0));
  auto scaled = raympi::Task(Scale).Remote(data, 2.0);  // an ObjectRef passes its value
  auto sum = raympi::Task(Sum).Remote(scaled);
  std::printf("sum of the scaled array = %.0f\n", *raympi::Get(sum));

  auto [ready, rest] = raympi::Wait(refs, /*num=*/10, /*timeout_ms=*/1000);
  std::printf("Wait: %zu ready, %zu not asked for\n", ready.size(), rest.size());

  // Many tiny calls: 10,000 squares in 16 tasks of 625 calls each.
  std::vector<int> inputs(10000);
  std::iota(inputs.begin(), inputs.end(), 0);
  long mapped = 0;
  for (const auto& part : raympi::Get(raympi::Task(Square).Map(inputs, 625))) {
    for (int v : *part) mapped += v;
  }
  std::printf("Map: sum of squares 0..9999 = %ld\n", mapped);

  raympi::Shutdown();
  return total == 328350 && mapped == 333283335000L ? 0 : 1;
}
