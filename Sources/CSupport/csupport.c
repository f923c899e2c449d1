#define _GNU_SOURCE
#include "csupport.h"
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int corral_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int corral_spawn_closefrom(void *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowest);
}

short corral_posix_spawn_setsid(void) {
    return POSIX_SPAWN_SETSID;
}

#include <fcntl.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>

static int corral_ifreq(const char *name, struct ifreq *ifr) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    memset(ifr, 0, sizeof(*ifr));
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    return 0;
}

static int corral_ctl_socket(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

int corral_tap_open(const char *name, int vnet_hdr, int multi_queue) {
    struct ifreq ifr;
    int err = corral_ifreq(name, &ifr);
    if (err) return err;
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (vnet_hdr) ifr.ifr_flags |= IFF_VNET_HDR;
    if (multi_queue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

int corral_if_index(const char *name) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    unsigned int index = if_nametoindex(name);
    return index == 0 ? -ENODEV : (int)index;
}

/// One ioctl on a control socket with `ifr` (named `name`, filled by the caller): 0 or -errno.
static int corral_ifreq_ioctl(const char *name, unsigned long request, struct ifreq *ifr) {
    char saved[sizeof ifr->ifr_ifru];
    memcpy(saved, &ifr->ifr_ifru, sizeof saved);
    int err = corral_ifreq(name, ifr);
    if (err) return err;
    memcpy(&ifr->ifr_ifru, saved, sizeof saved);
    int sock = corral_ctl_socket();
    if (sock < 0) return sock;
    int rc = ioctl(sock, request, ifr) < 0 ? -errno : 0;
    close(sock);
    return rc;
}

int corral_if_mtu(const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    int rc = corral_ifreq_ioctl(name, SIOCGIFMTU, &ifr);
    return rc < 0 ? rc : ifr.ifr_mtu;
}

int corral_if_set_mtu(const char *name, int mtu) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_mtu = mtu;
    return corral_ifreq_ioctl(name, SIOCSIFMTU, &ifr);
}

int corral_if_up(const char *name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    int rc = corral_ifreq_ioctl(name, SIOCGIFFLAGS, &ifr);
    if (rc < 0) return rc;
    ifr.ifr_flags |= IFF_UP;
    return corral_ifreq_ioctl(name, SIOCSIFFLAGS, &ifr);
}

int corral_bridge_add(const char *bridge, int ifindex) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = ifindex;
    return corral_ifreq_ioctl(bridge, SIOCBRADDIF, &ifr);
}

int corral_is_bridge(const char *name) {
    char path[128];
    if (strlen(name) >= IFNAMSIZ || strchr(name, '/')) return 0;
    snprintf(path, sizeof path, "/sys/class/net/%s/bridge", name);
    struct stat st;
    return stat(path, &st) == 0 ? 1 : 0;
}

#include <sys/uio.h>

long corral_send_with_fds(int sock, const void *buf, unsigned long len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > 64) return -EINVAL;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union {
        char data[CMSG_SPACE(sizeof(int) * 64)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        msg.msg_control = control.data;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
    }
    ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    return sent < 0 ? -errno : (long)sent;
}

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>

struct corral_nl_request {
    struct nlmsghdr header;
    struct ifinfomsg info;
    char attributes[512];
};

static struct rtattr *corral_nl_add(struct nlmsghdr *header, size_t capacity, unsigned short type,
                                    const void *data, size_t length) {
    size_t size = RTA_LENGTH(length);
    if (NLMSG_ALIGN(header->nlmsg_len) + RTA_ALIGN(size) > capacity) return NULL;
    struct rtattr *attribute = (struct rtattr *)((char *)header + NLMSG_ALIGN(header->nlmsg_len));
    attribute->rta_type = type;
    attribute->rta_len = (unsigned short)size;
    if (length) memcpy(RTA_DATA(attribute), data, length);
    header->nlmsg_len = NLMSG_ALIGN(header->nlmsg_len) + RTA_ALIGN(size);
    return attribute;
}

static void corral_nl_end(struct nlmsghdr *header, struct rtattr *nest) {
    nest->rta_len = (unsigned short)((char *)header + header->nlmsg_len - (char *)nest);
}

/// Sends one request and reads the kernel's ACK: 0 or -errno.
static int corral_nl_talk(struct nlmsghdr *header) {
    int sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (sock < 0) return -errno;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    header->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    header->nlmsg_seq = 1;
    int rc = 0;
    if (sendto(sock, header, header->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        rc = -errno;
    } else {
        char reply[4096];
        ssize_t n = recv(sock, reply, sizeof reply, 0);
        if (n < 0) {
            rc = -errno;
        } else {
            struct nlmsghdr *answer = (struct nlmsghdr *)reply;
            if (NLMSG_OK(answer, (unsigned int)n) && answer->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *error = (struct nlmsgerr *)NLMSG_DATA(answer);
                rc = error->error;  /* 0 is the ACK, otherwise -errno */
            } else {
                rc = -EPROTO;
            }
        }
    }
    close(sock);
    return rc;
}

int corral_macvtap_create(const char *name, const char *parent, const unsigned char *mac, unsigned int mode) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    int parent_index = corral_if_index(parent);
    if (parent_index < 0) return parent_index;
    struct corral_nl_request request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    request.header.nlmsg_type = RTM_NEWLINK;
    request.header.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    request.info.ifi_family = AF_UNSPEC;
    size_t capacity = sizeof request;
    unsigned int link = (unsigned int)parent_index;
    if (!corral_nl_add(&request.header, capacity, IFLA_LINK, &link, sizeof link)) return -E2BIG;
    if (!corral_nl_add(&request.header, capacity, IFLA_IFNAME, name, strlen(name) + 1)) return -E2BIG;
    if (!corral_nl_add(&request.header, capacity, IFLA_ADDRESS, mac, 6)) return -E2BIG;
    struct rtattr *info = corral_nl_add(&request.header, capacity, IFLA_LINKINFO, NULL, 0);
    if (!info) return -E2BIG;
    if (!corral_nl_add(&request.header, capacity, IFLA_INFO_KIND, "macvtap", strlen("macvtap"))) return -E2BIG;
    struct rtattr *data = corral_nl_add(&request.header, capacity, IFLA_INFO_DATA, NULL, 0);
    if (!data) return -E2BIG;
    if (!corral_nl_add(&request.header, capacity, IFLA_MACVLAN_MODE, &mode, sizeof mode)) return -E2BIG;
    corral_nl_end(&request.header, data);
    corral_nl_end(&request.header, info);
    return corral_nl_talk(&request.header);
}

int corral_link_delete(const char *name) {
    int index = corral_if_index(name);
    if (index < 0) return index;
    struct corral_nl_request request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    request.header.nlmsg_type = RTM_DELLINK;
    request.info.ifi_family = AF_UNSPEC;
    request.info.ifi_index = index;
    return corral_nl_talk(&request.header);
}

#include <sys/sysmacros.h>

int corral_mknod_char(const char *path, unsigned int major, unsigned int minor) {
    return mknod(path, S_IFCHR | 0600, makedev(major, minor)) == 0 ? 0 : -errno;
}

#include <arpa/inet.h>
#include <linux/if_addr.h>

int corral_bridge_create(const char *name) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    struct corral_nl_request request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    request.header.nlmsg_type = RTM_NEWLINK;
    request.header.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    request.info.ifi_family = AF_UNSPEC;
    size_t capacity = sizeof request;
    if (!corral_nl_add(&request.header, capacity, IFLA_IFNAME, name, strlen(name) + 1)) return -E2BIG;
    struct rtattr *info = corral_nl_add(&request.header, capacity, IFLA_LINKINFO, NULL, 0);
    if (!info) return -E2BIG;
    if (!corral_nl_add(&request.header, capacity, IFLA_INFO_KIND, "bridge", strlen("bridge"))) return -E2BIG;
    corral_nl_end(&request.header, info);
    return corral_nl_talk(&request.header);
}

struct corral_addr_request {
    struct nlmsghdr header;
    struct ifaddrmsg info;
    char attributes[128];
};

int corral_addr_add4(const char *name, unsigned int address, int prefix) {
    int index = corral_if_index(name);
    if (index < 0) return index;
    struct corral_addr_request request;
    memset(&request, 0, sizeof request);
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    request.header.nlmsg_type = RTM_NEWADDR;
    request.header.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    request.info.ifa_family = AF_INET;
    request.info.ifa_prefixlen = (unsigned char)prefix;
    request.info.ifa_index = (unsigned int)index;
    unsigned int wire = htonl(address);
    unsigned int broadcast = htonl(address | (prefix >= 32 ? 0u : (0xFFFFFFFFu >> prefix)));
    size_t capacity = sizeof request;
    if (!corral_nl_add(&request.header, capacity, IFA_LOCAL, &wire, sizeof wire)) return -E2BIG;
    if (!corral_nl_add(&request.header, capacity, IFA_ADDRESS, &wire, sizeof wire)) return -E2BIG;
    if (!corral_nl_add(&request.header, capacity, IFA_BROADCAST, &broadcast, sizeof broadcast)) return -E2BIG;
    return corral_nl_talk(&request.header);
}

int corral_raise_memlock(pid_t pid, unsigned long long bytes) {
    struct rlimit limit;
    if (prlimit(pid, RLIMIT_MEMLOCK, NULL, &limit) < 0) return errno;
    rlim_t wanted = (rlim_t)bytes;
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= wanted) return 0;
    limit.rlim_cur = wanted;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted) limit.rlim_max = wanted;
    if (prlimit(pid, RLIMIT_MEMLOCK, &limit, NULL) < 0) return errno;
    return 0;
}
