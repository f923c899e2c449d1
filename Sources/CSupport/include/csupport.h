#ifndef CORRAL_CSUPPORT_H
#define CORRAL_CSUPPORT_H
#include <sys/types.h>

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits (-1 on error, errno set).
int corral_pidfd_open(pid_t pid);

/// POSIX_SPAWN_SETSID, a macro Swift cannot import.
short corral_posix_spawn_setsid(void);

#endif
