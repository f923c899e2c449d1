#ifndef CORRAL_CSUPPORT_H
#define CORRAL_CSUPPORT_H
#include <sys/types.h>

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits (-1 on error, errno set).
int corral_pidfd_open(pid_t pid);

/// Makes the spawned child close every descriptor >= `lowest` (glibc >= 2.34), so nothing the
/// parent holds (sockets, QMP connections, listeners) leaks into a QEMU. Returns 0 or an errno.
int corral_spawn_closefrom(void *actions, int lowest);

/// POSIX_SPAWN_SETSID, a macro Swift cannot import.
short corral_posix_spawn_setsid(void);

#endif
