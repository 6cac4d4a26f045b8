/*
 * /init of Veneer's Linux test guest: checks what the real Linux drivers made of Veneer's
 * Hyper-V interface and VMBus, reports one line per check on the console, then powers off
 * through ACPI. One static program that forks once (for busybox mke2fs, below) and otherwise
 * never: on a host that interprets guest kernel code each fork+exec costs seconds.
 *
 * Output (the integration test reads it):
 *   veneer-init: start, Linux <release>
 *   veneer-init: vmbus device <instance> class <class> driver <name|none> state <n>   (each device)
 *   veneer-init: check <name>: PASS <detail>  |  veneer-init: check <name>: FAIL <detail>
 *   veneer-init: all <n> checks passed        |  veneer-init: <k> of <n> checks FAILED
 * Then power-off, or with `veneer.shell=1` on the command line a busybox shell on the console.
 *
 * Storage (issue 7): the two storvsp controllers of examples/linux.toml, told apart by their
 * instance GUIDs. hv_storvsc must bind both and sd must show every LUN with the size, block
 * sizes and write protection the config gives it (the table below); then an ext2 file system
 * made with busybox mke2fs (the one fork+exec: ~4 s here) is filled with files of known content,
 * unmounted, mounted again and read back; a second disk gets O_DIRECT writes and reads; the
 * read-only disk refuses writers. The integration test then checks the images from the host
 * (e2fsck -n, debugfs, qemu-img check). Lines:
 *   veneer-init: disk <sdX> controller <guid> lun <n>: <sectors> sectors, logical <n>, physical <n>, ro <0|1>
 *   veneer-init: file <path> <bytes> bytes fnv1a64 <hex>
 *
 * Network (issue 8): network.c, included below, checks hv_netvsc against netvsp when the VM has a
 * synthetic NIC (see there).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define HEARTBEAT_CLASS "57164f39-9115-4e78-ab55-382f3bd5422d"
#define CHANNEL_OPENED_STATE 3   /* enum vmbus_channel_state in include/linux/hyperv.h */

static int checks_run;
static int checks_failed;

static void say(const char *format, ...)
{
    char line[512];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t done = 0;
    while (done < n) {
        ssize_t w = write(1, line + done, (size_t)(n - done));
        if (w <= 0 && errno != EINTR)
            return;
        if (w > 0)
            done += w;
    }
}

static void check(const char *name, int passed, const char *format, ...)
{
    char detail[400];
    va_list args;
    va_start(args, format);
    vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    checks_run++;
    if (!passed)
        checks_failed++;
    say("veneer-init: check %s: %s %s", name, passed ? "PASS" : "FAIL", detail);
}

/* Reads a small text file into buf (NUL-terminated, trailing newline removed). */
static int read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return 0;
}

/* The kernel log so far (the init runs long after the drivers probed). */
static char *kernel_log(void)
{
    int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
    if (size <= 0)
        return NULL;
    char *log = malloc((size_t)size + 1);
    if (!log)
        return NULL;
    int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, size);
    if (n < 0) {
        free(log);
        return NULL;
    }
    log[n] = 0;
    return log;
}

/* Copies the rest of the log line that follows `needle` into out. */
static int log_find(const char *log, const char *needle, char *out, size_t size)
{
    const char *at = log ? strstr(log, needle) : NULL;
    if (!at)
        return 0;
    at += strlen(needle);
    size_t n = strcspn(at, "\n");
    if (n >= size)
        n = size - 1;
    memcpy(out, at, n);
    out[n] = 0;
    return 1;
}

struct vmbus_census {
    int devices;
    int unbound;
    int heartbeat_opened;
    char heartbeat_driver[64];
};

static void vmbus_devices(struct vmbus_census *census)
{
    memset(census, 0, sizeof *census);
    DIR *dir = opendir("/sys/bus/vmbus/devices");
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.')
            continue;
        char path[512], class_id[64] = "?", instance[64] = "?", state[16] = "?", link[256];
        char driver[64] = "none";
        snprintf(path, sizeof path, "/sys/bus/vmbus/devices/%s/class_id", entry->d_name);
        read_text(path, class_id, sizeof class_id);
        snprintf(path, sizeof path, "/sys/bus/vmbus/devices/%s/device_id", entry->d_name);
        read_text(path, instance, sizeof instance);
        snprintf(path, sizeof path, "/sys/bus/vmbus/devices/%s/state", entry->d_name);
        read_text(path, state, sizeof state);
        snprintf(path, sizeof path, "/sys/bus/vmbus/devices/%s/driver", entry->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = 0;
            const char *slash = strrchr(link, '/');
            snprintf(driver, sizeof driver, "%.63s", slash ? slash + 1 : link);
        }
        /* sysfs prints the GUIDs in braces */
        char *c = class_id[0] == '{' ? class_id + 1 : class_id;
        char *i = instance[0] == '{' ? instance + 1 : instance;
        c[strcspn(c, "}")] = 0;
        i[strcspn(i, "}")] = 0;
        say("veneer-init: vmbus device %s class %s driver %s state %s", i, c, driver, state);
        census->devices++;
        if (strcmp(driver, "none") == 0)
            census->unbound++;
        if (strcmp(c, HEARTBEAT_CLASS) == 0) {
            snprintf(census->heartbeat_driver, sizeof census->heartbeat_driver, "%s", driver);
            census->heartbeat_opened = atoi(state) == CHANNEL_OPENED_STATE;
        }
    }
    closedir(dir);
}

static long long monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ---- storage: two storvsp controllers (examples/linux.toml) -------------------------------- */

#define SCSI0_INSTANCE "d1e5c0a0-7e57-4a11-8d15-000000000001"
#define SCSI1_INSTANCE "d1e5c0a0-7e57-4a11-8d15-000000000002"

enum disk_role { ROLE_FILESYSTEM, ROLE_DIRECT, ROLE_READ_ONLY };

struct expected_disk {
    const char *controller;
    int lun;
    unsigned long long bytes;
    unsigned logical, physical;
    int read_only;
    enum disk_role role;
    char name[32];          /* sdX once found */
};

static struct expected_disk disks[] = {
    { SCSI0_INSTANCE, 0, 16ULL << 20, 512, 4096, 0, ROLE_FILESYSTEM, "" },   /* fs.raw */
    { SCSI0_INSTANCE, 1, 32ULL << 20, 512, 4096, 0, ROLE_DIRECT, "" },       /* data.vhdx */
    { SCSI1_INSTANCE, 0, 8ULL << 20, 4096, 4096, 1, ROLE_READ_ONLY, "" },    /* ro4k.raw */
};
#define DISK_COUNT (sizeof disks / sizeof disks[0])

static struct expected_disk *disk_with_role(enum disk_role role)
{
    for (size_t i = 0; i < DISK_COUNT; i++)
        if (disks[i].role == role && disks[i].name[0])
            return &disks[i];
    return NULL;
}

static unsigned long long read_number(const char *format, const char *name)
{
    char path[256], text[64] = "";
    snprintf(path, sizeof path, format, name);
    if (read_text(path, text, sizeof text) != 0)
        return ~0ULL;
    return strtoull(text, NULL, 10);
}

/* Walks /sys/block: every sd disk is matched to the table by controller instance and LUN.
 * Returns how many sd disks there are. */
static int find_disks(int print, int *unexpected)
{
    int found = 0;
    *unexpected = 0;
    for (size_t i = 0; i < DISK_COUNT; i++)
        disks[i].name[0] = 0;
    DIR *dir = opendir("/sys/block");
    if (!dir)
        return 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (strncmp(entry->d_name, "sd", 2) != 0)
            continue;
        found++;
        char link[512], real[PATH_MAX];
        snprintf(link, sizeof link, "/sys/block/%s/device", entry->d_name);
        if (!realpath(link, real))
            continue;
        /* .../<vmbus instance>/hostH/targetH:C:T/H:C:T:L */
        const char *last = strrchr(real, '/');
        unsigned h, c, t, l;
        if (!last || sscanf(last + 1, "%u:%u:%u:%u", &h, &c, &t, &l) != 4)
            continue;
        const char *controller = strstr(real, SCSI0_INSTANCE) ? SCSI0_INSTANCE
                               : strstr(real, SCSI1_INSTANCE) ? SCSI1_INSTANCE : "unknown";
        unsigned long long sectors = read_number("/sys/block/%s/size", entry->d_name);
        unsigned long long logical = read_number("/sys/block/%s/queue/logical_block_size", entry->d_name);
        unsigned long long physical = read_number("/sys/block/%s/queue/physical_block_size", entry->d_name);
        unsigned long long ro = read_number("/sys/block/%s/ro", entry->d_name);
        if (print)
            say("veneer-init: disk %s controller %s lun %u: %llu sectors, logical %llu, physical %llu, ro %llu",
                entry->d_name, controller, l, sectors, logical, physical, ro);
        int matched = 0;
        for (size_t i = 0; i < DISK_COUNT; i++) {
            struct expected_disk *e = &disks[i];
            if (strcmp(e->controller, controller) != 0 || (unsigned)e->lun != l || c != 0 || t != 0)
                continue;
            if (sectors * 512 == e->bytes && logical == e->logical && physical == e->physical
                && ro == (unsigned long long)e->read_only && !e->name[0]) {
                snprintf(e->name, sizeof e->name, "%.31s", entry->d_name);
                matched = 1;
            }
        }
        if (!matched)
            (*unexpected)++;
    }
    closedir(dir);
    return found;
}

/* File contents the host test regenerates: byte i of file k. */
static unsigned char content_byte(unsigned k, unsigned long long i)
{
    unsigned x = (unsigned)(i + 1) * 0x9E3779B1u ^ k * 0x85EBCA6Bu;
    return (unsigned char)(x >> 24 ^ x >> 7);
}

static unsigned long long fnv1a(unsigned long long h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ULL;
    return h;
}
#define FNV_OFFSET 0xCBF29CE484222325ULL

struct test_file {
    const char *path;       /* inside the file system */
    unsigned k;             /* content generator; 0 = the text below */
    size_t bytes;
};
static const char hello_text[] = "Hello from Veneer's Linux guest: ext2 on a storvsp disk.\n";
static const struct test_file test_files[] = {
    { "/hello.txt", 0, sizeof hello_text - 1 },
    { "/pattern.bin", 1, 256 * 1024 },
    { "/dir/nested.bin", 2, 100000 },
};

static void fill_content(const struct test_file *f, unsigned char *buf, size_t at, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = f->k == 0 ? (unsigned char)hello_text[at + i] : content_byte(f->k, at + i);
}

static int write_file(const char *path, const struct test_file *f, unsigned long long *hash)
{
    static unsigned char buf[65536];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    *hash = FNV_OFFSET;
    for (size_t at = 0; at < f->bytes;) {
        size_t n = f->bytes - at < sizeof buf ? f->bytes - at : sizeof buf;
        fill_content(f, buf, at, n);
        *hash = fnv1a(*hash, buf, n);
        if (write(fd, buf, n) != (ssize_t)n) {
            close(fd);
            return -1;
        }
        at += n;
    }
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Reads the file back; returns its size (or -1) and its hash. */
static long long read_file(const char *path, unsigned long long *hash)
{
    static unsigned char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    *hash = FNV_OFFSET;
    long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        *hash = fnv1a(*hash, buf, (size_t)n);
        total += n;
    }
    close(fd);
    return total;
}

/* busybox mke2fs in a child: the one fork+exec of this init. */
static int make_filesystem(const char *device, long long *ms)
{
    long long t0 = monotonic_ns();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execl("/bin/busybox", "mke2fs", "-F", "-L", "veneer", device, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    *ms = (monotonic_ns() - t0) / 1000000;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void filesystem_checks(void)
{
    struct expected_disk *d = disk_with_role(ROLE_FILESYSTEM);
    if (!d) {
        check("mkfs", 0, "no file-system disk (controller %s LUN 0)", SCSI0_INSTANCE);
        return;
    }
    char device[64];
    snprintf(device, sizeof device, "/dev/%s", d->name);
    long long ms = 0;
    int status = make_filesystem(device, &ms);
    check("mkfs", status == 0, "busybox mke2fs %s (fork+exec) exit %d after %lld ms", device, status, ms);
    if (status != 0)
        return;
    mkdir("/mnt", 0755);
    if (mount(device, "/mnt", "ext2", 0, NULL) != 0) {
        check("filesystem", 0, "mount %s as ext2: %s", device, strerror(errno));
        return;
    }
    mkdir("/mnt/dir", 0755);
    unsigned long long written[sizeof test_files / sizeof test_files[0]];
    int ok = 1;
    char path[128];
    for (size_t i = 0; i < sizeof test_files / sizeof test_files[0]; i++) {
        snprintf(path, sizeof path, "/mnt%s", test_files[i].path);
        if (write_file(path, &test_files[i], &written[i]) != 0) {
            say("veneer-init: writing %s: %s", path, strerror(errno));
            ok = 0;
        }
    }
    sync();
    int unmounted = umount("/mnt") == 0;
    /* Mounted again, the files come from the disk, not the page cache umount dropped. */
    int remounted = mount(device, "/mnt", "ext2", MS_RDONLY, NULL) == 0;
    int verified = 0;
    for (size_t i = 0; remounted && i < sizeof test_files / sizeof test_files[0]; i++) {
        snprintf(path, sizeof path, "/mnt%s", test_files[i].path);
        unsigned long long hash = 0;
        long long size = read_file(path, &hash);
        say("veneer-init: file %s %lld bytes fnv1a64 %016llx", test_files[i].path, size, hash);
        if (size == (long long)test_files[i].bytes && hash == written[i])
            verified++;
    }
    int unmounted_again = remounted && umount("/mnt") == 0;
    check("filesystem", ok && unmounted && remounted && unmounted_again && verified == 3,
          "ext2 on %s: 3 files written and synced, unmounted, mounted again: %d of 3 read back identical", device,
          verified);
}

#define DIRECT_BYTES (1 << 20)
#define DIRECT_OFFSET (4ULL << 20)

/* The word at disk byte offset o of the O_DIRECT disk (the host test regenerates it). */
static unsigned long long direct_word(unsigned long long o)
{
    return (o + 1) * 0x9E3779B97F4A7C15ULL ^ 0x5EULL << 56;
}

static void direct_checks(void)
{
    struct expected_disk *d = disk_with_role(ROLE_DIRECT);
    if (!d) {
        check("direct-io", 0, "no O_DIRECT disk (controller %s LUN 1)", SCSI0_INSTANCE);
        return;
    }
    char device[64];
    snprintf(device, sizeof device, "/dev/%s", d->name);
    unsigned long long *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, DIRECT_BYTES) != 0) {
        check("direct-io", 0, "no memory");
        return;
    }
    /* 1 MiB at 4 MiB and the disk's last 64 KiB: a VHDX block in the middle and one at the end. */
    const unsigned long long offsets[2] = { DIRECT_OFFSET, d->bytes - 65536 };
    const size_t lengths[2] = { DIRECT_BYTES, 65536 };
    int fd = open(device, O_RDWR | O_DIRECT | O_CLOEXEC);
    int ok = fd >= 0, verified = 0;
    for (int r = 0; ok && r < 2; r++) {
        for (size_t i = 0; i < lengths[r] / 8; i++)
            buf[i] = direct_word(offsets[r] + i * 8);
        ok = pwrite(fd, buf, lengths[r], (off_t)offsets[r]) == (ssize_t)lengths[r];
    }
    ok = ok && fdatasync(fd) == 0;
    for (int r = 0; ok && r < 2; r++) {
        memset(buf, 0, lengths[r]);
        if (pread(fd, buf, lengths[r], (off_t)offsets[r]) != (ssize_t)lengths[r])
            break;
        size_t i = 0;
        while (i < lengths[r] / 8 && buf[i] == direct_word(offsets[r] + i * 8))
            i++;
        verified += i == lengths[r] / 8;
    }
    int err = errno;
    /* Past the end: a short (empty) read, not an error. */
    ssize_t past = ok ? pread(fd, buf, 4096, (off_t)d->bytes) : -1;
    if (fd >= 0)
        close(fd);
    free(buf);
    check("direct-io", ok && verified == 2 && past == 0,
          "%s: O_DIRECT writes of 1 MiB at 4 MiB and 64 KiB at the end, fdatasync, %d of 2 read back identical; "
          "read at the end -> %zd%s%s",
          device, verified, past, ok ? "" : ": ", ok ? "" : strerror(err));
}

static void read_only_checks(void)
{
    struct expected_disk *d = disk_with_role(ROLE_READ_ONLY);
    if (!d) {
        check("read-only", 0, "no read-only disk (controller %s LUN 0)", SCSI1_INSTANCE);
        return;
    }
    char device[64];
    snprintf(device, sizeof device, "/dev/%s", d->name);
    /* sd_open refuses writers of a write-protected disk (EROFS); were the open allowed, the write
     * itself must fail (blkdev_write_iter: EPERM). */
    static unsigned char block[4096] __attribute__((aligned(4096)));
    int fd = open(device, O_RDWR | O_CLOEXEC);
    int refused = fd < 0 && (errno == EROFS || errno == EACCES);
    int err = errno;
    if (fd >= 0) {
        memset(block, 0x5A, sizeof block);
        refused = pwrite(fd, block, sizeof block, 0) < 0 && (errno == EPERM || errno == EROFS);
        err = errno;
        close(fd);
    }
    fd = open(device, O_RDONLY | O_DIRECT | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, block, sizeof block, 0) : -1;
    if (fd >= 0)
        close(fd);
    int zero = n == (ssize_t)sizeof block;
    for (size_t i = 0; zero && i < sizeof block; i++)
        zero = block[i] == 0;
    check("read-only", refused && zero, "%s: writing -> %s; a 4 KiB O_DIRECT read -> %zd bytes%s", device,
          refused ? strerror(err) : "allowed", n, zero ? " of zeroes" : "");
}

static void storage_checks(void)
{
    char path[256];
    int bound = 0;
    const char *controllers[2] = { SCSI0_INSTANCE, SCSI1_INSTANCE };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/sys/bus/vmbus/drivers/hv_storvsc/%s", controllers[i]);
        bound += access(path, F_OK) == 0;
    }
    check("storvsc", bound == 2, "hv_storvsc bound %d of the 2 storvsp controllers", bound);

    /* sd probes asynchronously: give it a little time. */
    int unexpected = 0, found = 0;
    long long t0 = monotonic_ns();
    for (;;) {
        found = find_disks(0, &unexpected);
        int named = 0;
        for (size_t i = 0; i < DISK_COUNT; i++)
            named += disks[i].name[0] != 0;
        if (named == (int)DISK_COUNT || monotonic_ns() - t0 > 60000000000LL)
            break;
        usleep(200000);
    }
    found = find_disks(1, &unexpected);
    int named = 0;
    for (size_t i = 0; i < DISK_COUNT; i++)
        named += disks[i].name[0] != 0;
    check("disks", named == (int)DISK_COUNT && unexpected == 0 && found == (int)DISK_COUNT,
          "%d of %zu configured LUNs found with their size, block sizes and write protection; %d sd disks, %d unexpected",
          named, DISK_COUNT, found, unexpected);

    filesystem_checks();
    direct_checks();
    read_only_checks();

    /* Nothing hv_storvsc complained about, from the probe to now. */
    char *log = kernel_log();
    int complaints = 0;
    for (const char *line = log; line && *line;) {
        size_t n = strcspn(line, "\n");
        char text[256];
        snprintf(text, sizeof text, "%.*s", (int)(n < 255 ? n : 255), line);
        if (strstr(text, "storvsc") && (strstr(text, "error") || strstr(text, "fail") || strstr(text, "Obsolete"))) {
            say("veneer-init: kernel: %s", text);
            complaints++;
        }
        line += n + (line[n] == '\n');
    }
    int have_log = log != NULL;
    free(log);
    check("storvsc-log", have_log && complaints == 0, "%d complaints from hv_storvsc in the kernel log", complaints);
}

#include "network.c"

int main(void)
{
    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);

    struct utsname uts;
    uname(&uts);
    say("veneer-init: start, Linux %s", uts.release);

    char *log = kernel_log();
    char found[160];

    int hyperv = log_find(log, "Hypervisor detected: ", found, sizeof found);
    check("hyperv", hyperv && strcmp(found, "Microsoft Hyper-V") == 0,
          "hypervisor detected: %s", hyperv ? found : "none");

    int vmbus = log_find(log, "Vmbus version:", found, sizeof found);
    check("vmbus-version", vmbus && strcmp(found, "5.3") == 0, "VMBus version %s", vmbus ? found : "not negotiated");

    char clocksource[64] = "";
    read_text("/sys/devices/system/clocksource/clocksource0/current_clocksource", clocksource, sizeof clocksource);
    check("clocksource", strcmp(clocksource, "hyperv_clocksource_tsc_page") == 0, "current clocksource %s",
          clocksource[0] ? clocksource : "unknown");

    /* The vDSO reads the TSC page without entering the kernel: time must move forward. */
    long long t0 = monotonic_ns(), t1 = t0;
    for (int spins = 0; spins < 100000000 && t1 - t0 < 1000000; spins++)
        t1 = monotonic_ns();
    check("clock-advances", t1 - t0 >= 1000000, "CLOCK_MONOTONIC moved %lld ns", t1 - t0);

    struct vmbus_census census;
    vmbus_devices(&census);
    check("vmbus-devices", census.devices > 0 && census.unbound == 0, "%d devices, %d without a driver",
          census.devices, census.unbound);
    check("heartbeat", strcmp(census.heartbeat_driver, "hv_utils") == 0 && census.heartbeat_opened,
          "heartbeat channel driver %s, %s", census.heartbeat_driver[0] ? census.heartbeat_driver : "none",
          census.heartbeat_opened ? "opened" : "not opened");
    free(log);
    storage_checks();
    network_checks();

    if (checks_failed)
        say("veneer-init: %d of %d checks FAILED", checks_failed, checks_run);
    else
        say("veneer-init: all %d checks passed", checks_run);

    char cmdline[1024] = "";
    read_text("/proc/cmdline", cmdline, sizeof cmdline);
    if (strstr(cmdline, "veneer.shell=1")) {
        say("veneer-init: starting a shell (busybox sh); `poweroff -f` ends the VM");
        execl("/bin/busybox", "sh", (char *)NULL);
        say("veneer-init: cannot start /bin/busybox: %s", strerror(errno));
    }
    sync();
    say("veneer-init: powering off");
    reboot(RB_POWER_OFF);
    say("veneer-init: power-off failed: %s", strerror(errno));
    for (;;)
        pause();
}
