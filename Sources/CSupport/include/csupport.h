#ifndef CORRAL_CSUPPORT_H
#define CORRAL_CSUPPORT_H
#include <sys/types.h>

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits (-1 on error, errno set).
int corral_pidfd_open(pid_t pid);

/// Makes the spawned child close every descriptor >= `lowest` (glibc >= 2.34), so nothing the
/// parent holds (sockets, QMP connections, listeners) leaks into a QEMU. Returns 0 or an errno.
int corral_spawn_closefrom(void *actions, int lowest);

/// prlimit(2) on RLIMIT_MEMLOCK of another process: raises its soft limit (and its hard one when lower) to at least
/// `bytes`; a higher or unlimited limit stays. Returns 0 or an errno.
int corral_raise_memlock(pid_t pid, unsigned long long bytes);

/// POSIX_SPAWN_SETSID, a macro Swift cannot import.
short corral_posix_spawn_setsid(void);

/// sendmsg(2) of `len` bytes with `nfds` descriptors attached (SCM_RIGHTS), MSG_NOSIGNAL. Returns the bytes sent
/// (the descriptors go with the first byte) or -errno.
long corral_send_with_fds(int sock, const void *buf, unsigned long len, const int *fds, int nfds);

/// Opens /dev/net/tun and attaches it to the tap `name` (created if missing; a tap created here lives as long as a
/// descriptor to it is open). `vnet_hdr` asks for IFF_VNET_HDR (virtio-net offloads), `multi_queue` for
/// IFF_MULTI_QUEUE (then call once per queue). Returns the descriptor (O_CLOEXEC) or -errno.
int corral_tap_open(const char *name, int vnet_hdr, int multi_queue);

/// The interface's index, or -errno (-ENODEV when there is none).
int corral_if_index(const char *name);

/// The interface's MTU, or -errno.
int corral_if_mtu(const char *name);

/// Sets the MTU; 0 or -errno.
int corral_if_set_mtu(const char *name, int mtu);

/// Sets IFF_UP; 0 or -errno.
int corral_if_up(const char *name);

/// Enslaves interface `ifindex` to the bridge `bridge` (SIOCBRADDIF); 0 or -errno.
int corral_bridge_add(const char *bridge, int ifindex);

/// Creates the macvtap `name` on `parent` with MAC `mac` (6 bytes) and macvlan mode `mode` (MACVLAN_MODE_*), over
/// rtnetlink (RTM_NEWLINK). 0 or -errno (the kernel's answer).
int corral_macvtap_create(const char *name, const char *parent, const unsigned char *mac, unsigned int mode);

/// Creates the Linux bridge `name` over rtnetlink (RTM_NEWLINK, kind bridge). 0 or -errno (-EEXIST when it exists).
int corral_bridge_create(const char *name);

/// Adds the IPv4 address `address` (host byte order) with `prefix` to `name` (RTM_NEWADDR). 0 or -errno
/// (-EEXIST when it is there already).
int corral_addr_add4(const char *name, unsigned int address, int prefix);

/// Deletes interface `name` over rtnetlink (RTM_DELLINK). 0 or -errno (-ENODEV when there is none).
int corral_link_delete(const char *name);

/// mknod(2) of a character device (mode 0600): 0 or -errno. (makedev is a macro Swift cannot import.)
int corral_mknod_char(const char *path, unsigned int major, unsigned int minor);

/// 1 when `name` is a Linux bridge (it has /sys/class/net/NAME/bridge), 0 otherwise.
int corral_is_bridge(const char *name);

/// A process to start confined: as `uid`/`gid` with `groups` only, no capabilities (bounding and ambient sets
/// dropped), PR_SET_NO_NEW_PRIVS, no core dumps, RLIMIT_MEMLOCK = `memlock_bytes`, RLIMIT_NOFILE = `nofile` (0 keeps
/// it). stdin is /dev/null, stdout and stderr `output_fd`; `passing_sources[i]` (each above `highest_target`)
/// becomes `passing_targets[i]`; every other descriptor is closed. uid 0 skips the identity change (an explicit
/// opt-out) but keeps the rest.
struct corral_confined_spawn {
    const char *path;
    char *const *argv;
    char *const *envp;
    int output_fd;
    const int *passing_targets;
    const int *passing_sources;
    int passing_count;
    int highest_target;
    int new_session;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int group_count;
    unsigned long memlock_bytes;
    unsigned long nofile;
    /// Folders replaced by an empty read-only tmpfs in a mount namespace of the child's own (none: no namespace).
    const char *const *hide_paths;
    int hide_count;
    /// Open `cgroup.procs` files of groups to join ("0" written to each) before anything else is dropped.
    const int *join_fds;
    int join_count;
};

/// fork + exec of `spec` (raw system calls only in between). The pid, or -errno with `failed_step` set to the step
/// that failed in the child (1 setsid … 14 execve, 15–17 the mount namespace, 18 joining a cgroup).
pid_t corral_spawn_confined(const struct corral_confined_spawn *spec, int *failed_step);

/// One device rule for a cgroup v2 device program: character (block 0) or block device, major and minor (-1: any),
/// access bits as the kernel's BPF_DEVCG_ACC_* (1 mknod, 2 read, 4 write).
struct corral_device_rule {
    int block;
    int major;
    int minor;
    int access;
};

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program that allows exactly `rules` (everything else denied) and attaches it to
/// the cgroup v2 folder open as `cgroup_fd`. 0, or -errno with the reason (and the verifier's log) in `error`.
int corral_attach_device_program(int cgroup_fd, const struct corral_device_rule *rules, int count,
                                 char *error, unsigned long error_length);

/// How many device programs are attached to the cgroup v2 folder open as `cgroup_fd`, or -errno.
int corral_device_programs(int cgroup_fd);

/// getxattr(2), setxattr(2) (flags 0), removexattr(2): Glibc's module does not export <sys/xattr.h>.
long corral_getxattr(const char *path, const char *name, void *value, unsigned long size);
int corral_setxattr(const char *path, const char *name, const void *value, unsigned long size);
int corral_removexattr(const char *path, const char *name);

#endif
