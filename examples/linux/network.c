/*
 * The network part of the Linux test guest's /init (issue 8), #included by init.c: Linux's own
 * hv_netvsc against Veneer's netvsp on an internal switch (the host at 10.99.0.1/24). No fork:
 * the address and the link go up through ioctls, the pings through a raw ICMP socket.
 *
 * Checks, when the VM has a synthetic NIC (else one line says the network checks are skipped):
 *   netvsc            the NIC's VMBus device is bound to hv_netvsc and has a net device;
 *   netvsc-link       after SIOCSIFFLAGS IFF_UP, the carrier is up (netvsp reported media connect);
 *   netvsc-address    10.99.0.10/24 set with SIOCSIFADDR / SIOCSIFNETMASK;
 *   ping-host         5 echo requests to 10.99.0.1 from a raw socket, 5 replies;
 *   host-pings        after "veneer-init: network ready <address> on <if>", 10 echo requests from
 *                     10.99.0.1 arrive (the host's `ping`; the kernel answers them);
 *   checksum-offload  ethtool says TX and RX checksumming are on (netvsp offered the offloads and
 *                     hv_netvsc took them), and 5 UDP datagrams go to 10.99.0.1:7002 with their
 *                     checksums left to the host (the integration test counts them there);
 *   netvsc-log        nothing from hv_netvsc in the kernel log about a failure or a timeout.
 * Lines besides the checks:
 *   veneer-init: network <if> mac <mac> mtu <n> queues <n>
 *   veneer-init: network ready 10.99.0.10 on <if>
 */
#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define NETWORK_CLASS "f8615163-df3e-46c5-913f-f2d2f965ed0e"
#define GUEST_ADDRESS "10.99.0.10"
#define HOST_ADDRESS "10.99.0.1"
#define HOST_PINGS_WANTED 10
#define HOST_PINGS_WAIT_S 300

/* The synthetic NIC's VMBus device: its driver and net device name. Returns 0 if there is none. */
static int find_netvsc(char *ifname, size_t ifsize, char *driver, size_t dsize)
{
    DIR *dir = opendir("/sys/bus/vmbus/devices");
    if (!dir)
        return 0;
    int found = 0;
    struct dirent *entry;
    while (!found && (entry = readdir(dir))) {
        if (entry->d_name[0] == '.')
            continue;
        char path[512], class_id[64] = "", link[256];
        snprintf(path, sizeof path, "/sys/bus/vmbus/devices/%s/class_id", entry->d_name);
        read_text(path, class_id, sizeof class_id);
        if (!strstr(class_id, NETWORK_CLASS))
            continue;
        found = 1;
        snprintf(driver, dsize, "none");
        snprintf(path, sizeof path, "/sys/bus/vmbus/devices/%s/driver", entry->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = 0;
            const char *slash = strrchr(link, '/');
            snprintf(driver, dsize, "%.63s", slash ? slash + 1 : link);
        }
        ifname[0] = 0;
        snprintf(path, sizeof path, "/sys/bus/vmbus/devices/%s/net", entry->d_name);
        DIR *net = opendir(path);
        struct dirent *e;
        while (net && (e = readdir(net)))
            if (e->d_name[0] != '.')
                snprintf(ifname, ifsize, "%.15s", e->d_name);
        if (net)
            closedir(net);
    }
    closedir(dir);
    return found;
}

static int interface_up(int sock, const char *ifname)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP;
    return ioctl(sock, SIOCSIFFLAGS, &ifr);
}

static int set_ipv4(int sock, const char *ifname, unsigned long request, const char *address)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    struct sockaddr_in *a = (struct sockaddr_in *)&ifr.ifr_addr;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, address, &a->sin_addr);
    return ioctl(sock, request, &ifr);
}

static int ethtool_flag(int sock, const char *ifname, unsigned cmd)
{
    struct ethtool_value value = { .cmd = cmd };
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    ifr.ifr_data = (void *)&value;
    if (ioctl(sock, SIOCETHTOOL, &ifr) < 0)
        return -1;
    return (int)value.data;
}

static unsigned short icmp_checksum(const void *data, size_t len)
{
    const unsigned char *p = data;
    unsigned sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (unsigned)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (unsigned)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return htons((unsigned short)~sum);
}

/* One echo request to `to` from the raw socket; waits up to `ms` for its reply. */
static int ping_once(int raw, const struct sockaddr_in *to, unsigned short seq, int ms)
{
    unsigned char packet[64];
    memset(packet, 0, sizeof packet);
    struct icmphdr *h = (struct icmphdr *)packet;
    h->type = ICMP_ECHO;
    h->un.echo.id = htons(0x7665);
    h->un.echo.sequence = htons(seq);
    for (size_t i = sizeof *h; i < sizeof packet; i++)
        packet[i] = (unsigned char)i;
    h->checksum = icmp_checksum(packet, sizeof packet);
    if (sendto(raw, packet, sizeof packet, 0, (const struct sockaddr *)to, sizeof *to) != (ssize_t)sizeof packet)
        return 0;
    long long deadline = monotonic_ns() + (long long)ms * 1000000;
    for (;;) {
        long long left = (deadline - monotonic_ns()) / 1000000;
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = raw, .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        unsigned char in[1500];
        ssize_t n = recv(raw, in, sizeof in, 0);
        if (n < (ssize_t)sizeof(struct iphdr))
            continue;
        const struct iphdr *ip = (const struct iphdr *)in;
        size_t ihl = (size_t)ip->ihl * 4;
        if ((size_t)n < ihl + sizeof(struct icmphdr) || ip->saddr != to->sin_addr.s_addr)
            continue;
        const struct icmphdr *r = (const struct icmphdr *)(in + ihl);
        if (r->type == ICMP_ECHOREPLY && r->un.echo.id == h->un.echo.id && r->un.echo.sequence == h->un.echo.sequence)
            return 1;
    }
}

/* Counts echo requests from `from` that reach the raw socket (the kernel answers them itself)
 * until `want` arrived or `seconds` passed. */
static int count_echo_requests(int raw, in_addr_t from, int want, int seconds)
{
    int seen = 0;
    long long deadline = monotonic_ns() + (long long)seconds * 1000000000;
    while (seen < want) {
        long long left = (deadline - monotonic_ns()) / 1000000;
        if (left <= 0)
            break;
        struct pollfd p = { .fd = raw, .events = POLLIN };
        if (poll(&p, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
            continue;
        unsigned char in[1500];
        ssize_t n = recv(raw, in, sizeof in, 0);
        if (n < (ssize_t)sizeof(struct iphdr))
            continue;
        const struct iphdr *ip = (const struct iphdr *)in;
        size_t ihl = (size_t)ip->ihl * 4;
        if ((size_t)n >= ihl + sizeof(struct icmphdr) && ip->saddr == from
            && ((const struct icmphdr *)(in + ihl))->type == ICMP_ECHO)
            seen++;
    }
    return seen;
}

static void network_checks(void)
{
    char ifname[IFNAMSIZ] = "", driver[64] = "";
    if (!find_netvsc(ifname, sizeof ifname, driver, sizeof driver)) {
        say("veneer-init: network: no synthetic NIC in this VM (network checks skipped)");
        return;
    }
    check("netvsc", strcmp(driver, "hv_netvsc") == 0 && ifname[0], "VMBus NIC %s bound to %s, net device %s",
          NETWORK_CLASS, driver, ifname[0] ? ifname : "none");
    if (!ifname[0])
        return;

    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    interface_up(sock, "lo");
    int up = interface_up(sock, ifname);
    char path[256], carrier[16] = "", operstate[32] = "", mac[32] = "", mtu[16] = "";
    long long t0 = monotonic_ns();
    for (;;) {
        snprintf(path, sizeof path, "/sys/class/net/%s/carrier", ifname);
        read_text(path, carrier, sizeof carrier);
        snprintf(path, sizeof path, "/sys/class/net/%s/operstate", ifname);
        read_text(path, operstate, sizeof operstate);
        if ((strcmp(carrier, "1") == 0 && strcmp(operstate, "up") == 0) || monotonic_ns() - t0 > 30000000000LL)
            break;
        usleep(100000);
    }
    check("netvsc-link", up == 0 && strcmp(carrier, "1") == 0 && strcmp(operstate, "up") == 0,
          "%s: IFF_UP %s, carrier %s, operstate %s after %lld ms", ifname, up == 0 ? "set" : strerror(errno), carrier,
          operstate, (monotonic_ns() - t0) / 1000000);

    snprintf(path, sizeof path, "/sys/class/net/%s/address", ifname);
    read_text(path, mac, sizeof mac);
    snprintf(path, sizeof path, "/sys/class/net/%s/mtu", ifname);
    read_text(path, mtu, sizeof mtu);
    int queues = 0;
    snprintf(path, sizeof path, "/sys/class/net/%s/queues", ifname);
    DIR *dir = opendir(path);
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        queues += strncmp(e->d_name, "tx-", 3) == 0;
    if (dir)
        closedir(dir);
    say("veneer-init: network %s mac %s mtu %s queues %d", ifname, mac, mtu, queues);

    int addressed = set_ipv4(sock, ifname, SIOCSIFADDR, GUEST_ADDRESS) == 0
                    && set_ipv4(sock, ifname, SIOCSIFNETMASK, "255.255.255.0") == 0;
    check("netvsc-address", addressed, "%s/24 on %s: %s", GUEST_ADDRESS, ifname, addressed ? "set" : strerror(errno));

    int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    struct sockaddr_in host = { .sin_family = AF_INET };
    inet_pton(AF_INET, HOST_ADDRESS, &host.sin_addr);
    int replies = 0;
    t0 = monotonic_ns();
    for (unsigned short seq = 1; seq <= 5 && raw >= 0; seq++)
        replies += ping_once(raw, &host, seq, 3000);
    check("ping-host", replies == 5, "%d of 5 echo requests to %s answered (raw ICMP socket) in %lld ms", replies,
          HOST_ADDRESS, (monotonic_ns() - t0) / 1000000);

    say("veneer-init: network ready %s on %s", GUEST_ADDRESS, ifname);
    int pings = raw >= 0 ? count_echo_requests(raw, host.sin_addr.s_addr, HOST_PINGS_WANTED, HOST_PINGS_WAIT_S) : 0;
    check("host-pings", pings == HOST_PINGS_WANTED, "%d echo requests from %s reached the guest (want %d)", pings,
          HOST_ADDRESS, HOST_PINGS_WANTED);
    if (raw >= 0)
        close(raw);

    int tx = ethtool_flag(sock, ifname, ETHTOOL_GTXCSUM), rx = ethtool_flag(sock, ifname, ETHTOOL_GRXCSUM);
    int sent = 0;
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sink = host;
    sink.sin_port = htons(7002);
    for (int k = 0; k < 5 && udp >= 0; k++) {
        char text[32];
        int n = snprintf(text, sizeof text, "veneer-linux %d", k);
        sent += sendto(udp, text, (size_t)n, 0, (struct sockaddr *)&sink, sizeof sink) == n;
    }
    if (udp >= 0)
        close(udp);
    check("checksum-offload", tx == 1 && rx == 1 && sent == 5,
          "ethtool tx-checksumming %d rx-checksumming %d; %d UDP datagrams to %s:7002 with the checksum left to netvsp",
          tx, rx, sent, HOST_ADDRESS);
    close(sock);

    char *log = kernel_log();
    int complaints = 0;
    for (const char *line = log; line && *line;) {
        size_t n = strcspn(line, "\n");
        char text[256];
        snprintf(text, sizeof text, "%.*s", (int)(n < 255 ? n : 255), line);
        if (strstr(text, "netvsc")
            && (strstr(text, "error") || strstr(text, "fail") || strstr(text, "timed out") || strstr(text, "unable")
                || strstr(text, "Unable"))) {
            say("veneer-init: kernel: %s", text);
            complaints++;
        }
        line += n + (line[n] == '\n');
    }
    int have_log = log != NULL;
    free(log);
    check("netvsc-log", have_log && complaints == 0, "%d complaints from hv_netvsc in the kernel log", complaints);
}
