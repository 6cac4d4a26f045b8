/*
 * netbench: the host's side of bench/net/run, and its TAP-only baseline.
 *
 *   netbench udp-sink ADDR PORT IDLE_S MAX_S
 *       counts UDP datagrams to ADDR:PORT by frame size (payload + 42 bytes of Ethernet, IPv4 and
 *       UDP headers) until IDLE_S seconds pass without one (after the first) or MAX_S in all;
 *       prints "sink SIZE frames N ns T" per size seen (T: first to last datagram of that size).
 *   netbench udp-send ADDR PORT FRAME_SIZE SECONDS
 *       sends datagrams that make FRAME_SIZE-byte frames as fast as sendmmsg goes;
 *       prints "send SIZE frames N ns T cpu-ns C".
 *   netbench tap-send TAP FRAME_SIZE SECONDS DST_MAC
 *       writes FRAME_SIZE-byte UDP frames (10.99.0.20:10000 -> 10.99.0.1:9000, to DST_MAC) into
 *       the existing TAP device TAP, the way netvsp hands a guest's frames to its TAP;
 *       prints "tap-send SIZE frames N ns T cpu-ns C".
 *   netbench tap-recv TAP SECONDS
 *       reads frames from the existing TAP device for SECONDS, as netvsp does for its guest;
 *       prints "tap-recv SIZE frames N ns T cpu-ns C" per size class (64 and 1514).
 *
 * Frames carry no vnet header here: the TAP is opened without IFF_VNET_HDR, so the baseline pays
 * no offload work netvsp might skip.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEADERS 42
#define BATCH 64

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return ((uint64_t)u.ru_utime.tv_sec + (uint64_t)u.ru_stime.tv_sec) * 1000000000u
           + ((uint64_t)u.ru_utime.tv_usec + (uint64_t)u.ru_stime.tv_usec) * 1000u;
}

static void die(const char *what)
{
    fprintf(stderr, "netbench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static unsigned frame_size(const char *text)
{
    unsigned size = (unsigned)strtoul(text, NULL, 10);
    if (size < 60 || size > 1514) {
        fprintf(stderr, "netbench: frame size %s is not 60..1514\n", text);
        exit(2);
    }
    return size;
}

static int open_tap(const char *name)
{
    int fd = open("/dev/net/tun", O_RDWR);
    if (fd < 0)
        die("/dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        die("TUNSETIFF");
    return fd;
}

static int udp_sink(const char *addr, int port, int idle_s, int max_s)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        die("socket");
    int rcvbuf = 64 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("bind");
    struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static char bufs[BATCH][2048];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
        msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
    }
    uint64_t frames[1515] = { 0 }, first[1515] = { 0 }, last[1515] = { 0 };
    uint64_t start = now_ns(), latest = 0;
    for (;;) {
        int n = recvmmsg(s, msgs, BATCH, 0, NULL);
        uint64_t t = now_ns();
        for (int i = 0; i < n; i++) {
            unsigned size = msgs[i].msg_len + HEADERS;
            if (size > 1514)
                size = 1514;
            if (frames[size]++ == 0)
                first[size] = t;
            last[size] = t;
            latest = t;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            die("recvmmsg");
        if (latest && t - latest > (uint64_t)idle_s * 1000000000u)
            break;
        if (t - start > (uint64_t)max_s * 1000000000u)
            break;
    }
    for (unsigned size = 0; size <= 1514; size++)
        if (frames[size])
            printf("sink %u frames %lu ns %lu\n", size, (unsigned long)frames[size], (unsigned long)(last[size] - first[size]));
    return 0;
}

static int udp_send(const char *addr, int port, unsigned size, int seconds)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        die("socket");
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect");
    static char payload[1514];
    struct iovec iov = { payload, size - HEADERS };
    struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++)
        msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 } };
    uint64_t sent = 0, start = now_ns(), end = start + (uint64_t)seconds * 1000000000u, cpu = cpu_ns();
    while (now_ns() < end) {
        int n = sendmmsg(s, msgs, BATCH, 0);
        if (n > 0)
            sent += (uint64_t)n;
        else if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED)
            die("sendmmsg");
    }
    printf("send %u frames %lu ns %lu cpu-ns %lu\n", size, (unsigned long)sent, (unsigned long)(now_ns() - start),
           (unsigned long)(cpu_ns() - cpu));
    return 0;
}

static uint16_t ip_checksum(const uint8_t *p, unsigned len)
{
    uint32_t sum = 0;
    for (unsigned i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

static int tap_send(const char *tap, unsigned size, int seconds, const char *dst_mac)
{
    int fd = open_tap(tap);
    uint8_t frame[1514];
    memset(frame, 0, sizeof(frame));
    unsigned m[6];
    if (sscanf(dst_mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
        fprintf(stderr, "netbench: bad MAC %s\n", dst_mac);
        return 2;
    }
    for (int i = 0; i < 6; i++)
        frame[i] = (uint8_t)m[i];
    static const uint8_t src_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x20 };
    memcpy(frame + 6, src_mac, 6);
    frame[12] = 0x08;
    uint8_t *ip = frame + 14;
    unsigned ip_len = size - 14;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(ip_len >> 8);
    ip[3] = (uint8_t)ip_len;
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, (uint8_t[]){ 10, 99, 0, 20 }, 4);
    memcpy(ip + 16, (uint8_t[]){ 10, 99, 0, 1 }, 4);
    uint16_t c = ip_checksum(ip, 20);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    uint8_t *udp = ip + 20;
    unsigned udp_len = ip_len - 20;
    udp[0] = 10000 >> 8;
    udp[1] = 10000 & 0xFF;
    udp[2] = 9000 >> 8;
    udp[3] = 9000 & 0xFF;
    udp[4] = (uint8_t)(udp_len >> 8);
    udp[5] = (uint8_t)udp_len;
    uint64_t sent = 0, start = now_ns(), end = start + (uint64_t)seconds * 1000000000u, cpu = cpu_ns();
    while (now_ns() < end) {
        for (int i = 0; i < BATCH; i++) {
            if (write(fd, frame, size) == (ssize_t)size)
                sent++;
            else if (errno != EAGAIN && errno != ENOBUFS)
                die("write to the TAP");
        }
    }
    printf("tap-send %u frames %lu ns %lu cpu-ns %lu\n", size, (unsigned long)sent, (unsigned long)(now_ns() - start),
           (unsigned long)(cpu_ns() - cpu));
    return 0;
}

static int tap_recv(const char *tap, int seconds)
{
    int fd = open_tap(tap);
    uint8_t frame[65536];
    uint64_t frames[2] = { 0 }, first[2] = { 0 }, last[2] = { 0 };
    uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000u, cpu = cpu_ns();
    for (;;) {
        uint64_t t = now_ns();
        if (t >= end)
            break;
        /* Blocking reads with a bound, so the CPU time counts work, not spinning. */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int ready = poll(&p, 1, (int)((end - t) / 1000000 + 1));
        if (ready < 0 && errno != EINTR)
            die("poll on the TAP");
        if (ready <= 0)
            continue;
        ssize_t n = read(fd, frame, sizeof(frame));
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                die("read from the TAP");
            continue;
        }
        if (n < 42 || frame[12] != 0x08 || frame[13] != 0x00 || frame[23] != 17)
            continue;
        unsigned k = n <= 128 ? 0 : 1;
        t = now_ns();
        if (frames[k]++ == 0)
            first[k] = t;
        last[k] = t;
    }
    cpu = cpu_ns() - cpu;
    for (unsigned k = 0; k < 2; k++)
        if (frames[k])
            printf("tap-recv %u frames %lu ns %lu cpu-ns %lu\n", k == 0 ? 64 : 1514, (unsigned long)frames[k],
                   (unsigned long)(last[k] - first[k]), (unsigned long)cpu);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "udp-sink") == 0)
        return udp_sink(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc == 6 && strcmp(argv[1], "udp-send") == 0)
        return udp_send(argv[2], atoi(argv[3]), frame_size(argv[4]), atoi(argv[5]));
    if (argc == 6 && strcmp(argv[1], "tap-send") == 0)
        return tap_send(argv[2], frame_size(argv[3]), atoi(argv[4]), argv[5]);
    if (argc == 4 && strcmp(argv[1], "tap-recv") == 0)
        return tap_recv(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: netbench udp-sink ADDR PORT IDLE_S MAX_S | udp-send ADDR PORT SIZE SECONDS |\n"
                    "       tap-send TAP SIZE SECONDS DST_MAC | tap-recv TAP SECONDS\n");
    return 2;
}
