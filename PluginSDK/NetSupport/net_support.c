#define _GNU_SOURCE
#include "veneer_net_support.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert(VENEER_TUN_F_CSUM == TUN_F_CSUM && VENEER_TUN_F_TSO4 == TUN_F_TSO4 && VENEER_TUN_F_TSO6 == TUN_F_TSO6 &&
               VENEER_TUN_F_TSO_ECN == TUN_F_TSO_ECN && VENEER_TUN_F_UFO == TUN_F_UFO, "TUN_F_* drifted");

int veneer_tap_open_queue(const char *name) {
    size_t length = strlen(name);
    if (length == 0 || length >= IFNAMSIZ) return -EINVAL;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, name, length);
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

int veneer_tap_set_vnet_header_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ? -errno : 0;
}

int veneer_tap_set_offload(int fd, unsigned flags) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

int veneer_interface_flags(const char *name) {
    size_t length = strlen(name);
    if (length == 0 || length >= IFNAMSIZ) return -EINVAL;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, name, length);
    int result = ioctl(sock, SIOCGIFFLAGS, &request) < 0 ? -errno : (unsigned short)request.ifr_flags;
    close(sock);
    return result;
}

int veneer_packet_socket(int ifindex) {
    int sock = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (sock < 0) return -errno;
    struct sockaddr_ll address;
    memset(&address, 0, sizeof address);
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    address.sll_ifindex = ifindex;
    if (bind(sock, (struct sockaddr *)&address, sizeof address) < 0) {
        int saved = errno;
        close(sock);
        return -saved;
    }
    return sock;
}

int veneer_unshare_network_namespace(void) {
    return unshare(CLONE_NEWNET) < 0 ? -errno : 0;
}
