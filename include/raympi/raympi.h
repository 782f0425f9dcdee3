// raympi: Ray's programming model for MPI batch jobs. Include this header only.
//
// @code
//   #include <raympi/raympi.h>
//   int Square(int x) { return x * x; }
//   RAYMPI_REMOTE(Square);
//   int main(int argc, char** argv) {
//     raympi::Init(argc, argv);
//     auto ref = raympi::Task(Square).Remote(7);
//     return *raympi::Get(ref) == 49 ? 0 : 1;
//   }
// @endcode
// Run with: mpirun -n 2 raympi ./app
#pragma once

#include "raympi/actor.h"
#include "raympi/api.h"
#include "raympi/errors.h"
#include "raympi/function_registry.h"
#include "raympi/object_ref.h"
#include "raympi/placement_group.h"
#include "raympi/serialization.h"
