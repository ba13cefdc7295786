//go:build cgo && linux

package main

/*
#include <stdio.h>
#include <unistd.h>
#include <sys/resource.h>

#define IPCBENCH_EXIT_LIMITS 4
#define IPCBENCH_MIN_ADDRESS_SPACE (4ULL << 30)

// ipcbench_check_address_space runs as a C constructor, before the Go
// runtime starts: under a small RLIMIT_AS the runtime cannot start at all
// (it reserves about 1.2 GiB of address space at once, and later dies
// wherever a reservation fails), so no Go code could say why.
__attribute__((constructor)) static void ipcbench_check_address_space(void) {
	struct rlimit rl;
	if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= IPCBENCH_MIN_ADDRESS_SPACE) {
		return;
	}
	dprintf(2, "ipcbench: the address-space limit (ulimit -v) is %llu MiB, below the %llu MiB ipcbench needs "
		"(the Go runtime reserves about 1.2 GiB before it starts, and each thread adds a stack); raise it, e.g. ulimit -v unlimited\n",
		(unsigned long long)(rl.rlim_cur >> 20), IPCBENCH_MIN_ADDRESS_SPACE >> 20);
	_exit(IPCBENCH_EXIT_LIMITS);
}
*/
import "C"

// The C constructor exits with exitLimits: this fails to compile if the two
// numbers differ.
const _ = uint(exitLimits-C.IPCBENCH_EXIT_LIMITS) + uint(C.IPCBENCH_EXIT_LIMITS-exitLimits)
