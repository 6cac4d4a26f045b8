/*
 * veneer_net_support.h — the Linux networking calls Swift cannot make by itself: TUNSETIFF and
 * friends take a struct ifreq through variadic ioctl, AF_PACKET needs sockaddr_ll, and
 * unshare(CLONE_NEWNET) is not in Swift's Glibc module. Stateless wrappers; every function returns
 * a non-negative result or -errno. The Swift side (VeneerNet) owns all policy.
 */
#ifndef VENEER_NET_SUPPORT_H
#define VENEER_NET_SUPPORT_H

/* TUNSETOFFLOAD bits (linux/if_tun.h). */
static const unsigned VENEER_TUN_F_CSUM = 0x01;
static const unsigned VENEER_TUN_F_TSO4 = 0x02;
static const unsigned VENEER_TUN_F_TSO6 = 0x04;
static const unsigned VENEER_TUN_F_TSO_ECN = 0x08;
static const unsigned VENEER_TUN_F_UFO = 0x10;
static const unsigned VENEER_TUN_F_USO4 = 0x20;
static const unsigned VENEER_TUN_F_USO6 = 0x40;

/* Opens one queue of the TAP `name` (creating the device on the first queue) with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE, non-blocking and close-on-exec.
 * Returns the fd or -errno. */
int veneer_tap_open_queue(const char *name);

/* TUNSETVNETHDRSZ: the size of the virtio-net header before each frame. */
int veneer_tap_set_vnet_header_size(int fd, int size);

/* TUNSETOFFLOAD with VENEER_TUN_F_* bits: what the host may hand the fd unsegmented/unchecksummed. */
int veneer_tap_set_offload(int fd, unsigned flags);

/* SIOCGIFFLAGS of `name` (in the caller's network namespace): the IFF_* short flags, or -errno. */
int veneer_interface_flags(const char *name);

/* An AF_PACKET raw socket bound to interface `ifindex`, receiving every protocol, non-blocking.
 * Returns the fd or -errno. Tools and tests use it to watch a wire. */
int veneer_packet_socket(int ifindex);

/* unshare(CLONE_NEWNET) for the calling thread only: tests put a thread in a fresh namespace. */
int veneer_unshare_network_namespace(void);

#endif
