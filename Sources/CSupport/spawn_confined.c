#define _GNU_SOURCE
#include "csupport.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* Between fork and exec only raw system calls: the parent is multithreaded. A failing step writes its errno to
   the report pipe and exits 127, so the parent can say which step failed. */
static void fail(int report, int step) {
    int code[2] = { step, errno };
    (void)!write(report, code, sizeof(code));
    _exit(127);
}

pid_t corral_spawn_confined(const struct corral_confined_spawn *s, int *failed_step) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(report[0]);
        close(report[1]);
        return -saved;
    }
    if (pid == 0) {
        close(report[0]);
        if (s->new_session && setsid() < 0) fail(report[1], 1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
        }
        /* Into the VM's cgroups while still root (the files are root's), before any descriptor is
           moved (the placing below could overwrite these). */
        for (int i = 0; i < s->join_count; i++) {
            if (write(s->join_fds[i], "0\n", 2) != 2) fail(report[1], 18);
        }
        int in = open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0) fail(report[1], 2);
        if (dup2(s->output_fd, 1) < 0 || dup2(1, 2) < 0) fail(report[1], 3);
        for (int i = 0; i < s->passing_count; i++) {
            if (dup2(s->passing_sources[i], s->passing_targets[i]) < 0) fail(report[1], 4);
        }
        /* Everything above the handed-over descriptors goes, except the report pipe (close-on-exec). */
        int keep = s->highest_target + 1;
        if (report[1] >= keep) {
            int moved = fcntl(report[1], F_DUPFD_CLOEXEC, keep);
            if (moved < 0) fail(report[1], 5);
            report[1] = moved;
            if (moved > keep) syscall(SYS_close_range, keep, moved - 1, 0);
            syscall(SYS_close_range, moved + 1, ~0U, 0);
        } else {
            syscall(SYS_close_range, keep, ~0U, 0);
        }
        struct rlimit core = { 0, 0 };
        if (setrlimit(RLIMIT_CORE, &core) < 0) fail(report[1], 6);
        struct rlimit memlock = { s->memlock_bytes, s->memlock_bytes };
        if (setrlimit(RLIMIT_MEMLOCK, &memlock) < 0) fail(report[1], 7);
        if (s->nofile > 0) {
            struct rlimit nofile = { s->nofile, s->nofile };
            if (setrlimit(RLIMIT_NOFILE, &nofile) < 0) fail(report[1], 8);
        }
        if (s->hide_count > 0) {
            /* Its own mount namespace, where the folders it has no business in are empty: whatever it opens, it
               gets by descriptor from the daemon. */
            if (unshare(CLONE_NEWNS) < 0) fail(report[1], 15);
            if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail(report[1], 16);
            for (int i = 0; i < s->hide_count; i++) {
                if (mount("corral-hidden", s->hide_paths[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                          "size=4k,mode=0755") < 0 && errno != ENOENT) fail(report[1], 17);
            }
        }
        if (s->uid != 0) {
            /* Bounding and ambient capabilities go first (dropping them needs CAP_SETPCAP), then the identity:
               a change from root to another uid clears the permitted and effective sets. */
            for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) fail(report[1], 9);
            }
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
            if (syscall(SYS_setgroups, s->group_count, s->groups) < 0) fail(report[1], 10);
            if (syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0) fail(report[1], 11);
            if (syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0) fail(report[1], 12);
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(report[1], 13);
        execve(s->path, s->argv, s->envp);
        fail(report[1], 14);
    }
    close(report[1]);
    int code[2] = { 0, 0 };
    ssize_t n;
    do { n = read(report[0], code, sizeof(code)); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof(code)) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (failed_step) *failed_step = code[0];
        return -(code[1] ? code[1] : EIO);
    }
    return pid;
}

#include <sys/xattr.h>

long corral_getxattr(const char *path, const char *name, void *value, unsigned long size) {
    return (long)getxattr(path, name, value, size);
}

int corral_setxattr(const char *path, const char *name, const void *value, unsigned long size) {
    return setxattr(path, name, value, size, 0);
}

int corral_removexattr(const char *path, const char *name) {
    return removexattr(path, name);
}
