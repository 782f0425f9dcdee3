// What a supervisor adds to its own environment before it starts the user's program (driver or
// worker): for now, huge pages for glibc's malloc.
//
// Why: glibc serves a large allocation (a 64 MiB std::vector a task receives or returns) with a
// fresh mmap of 4 KiB pages, each faulted in on first touch. A page fault costs tens of
// microseconds on a paravirtualised node (the test VM: ~30 us), so a 64 MiB round trip (Put, a
// task taking and returning it, Get) spent ~600 of its ~700 ms in faults. With
// GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (glibc >= 2.35) malloc asks for transparent huge pages
// (madvise), 2 MiB each: 76-114 ms. Kernels with THP "never" ignore the request.
#pragma once

#include <string>

namespace raympi {

// GLIBC_TUNABLES for the program, given the current value (nullptr if unset): the current one
// with glibc.malloc.hugetlb=1 appended, unless it names glibc.malloc.hugetlb already (the
// user's choice stands).
std::string TunablesWithMallocHugePages(const char* current);

// Sets GLIBC_TUNABLES accordingly unless RAYMPI_MALLOC_HUGEPAGES=0. Call while the process is
// single-threaded (setenv), before it starts any program; glibc reads the value when the
// program starts.
void PrepareProgramEnvironment();

}  // namespace raympi
