/*
 * /init of Veneer's Linux test guest: checks what the real Linux drivers made of Veneer's
 * Hyper-V interface and VMBus, reports one line per check on the console, then powers off
 * through ACPI. One static program, no fork or exec: on a host that interprets guest kernel
 * code each fork+exec costs seconds.
 *
 * Output (the integration test reads it):
 *   veneer-init: start, Linux <release>
 *   veneer-init: vmbus device <instance> class <class> driver <name|none> state <n>   (each device)
 *   veneer-init: check <name>: PASS <detail>  |  veneer-init: check <name>: FAIL <detail>
 *   veneer-init: all <n> checks passed        |  veneer-init: <k> of <n> checks FAILED
 * Then power-off, or with `veneer.shell=1` on the command line a busybox shell on the console.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
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
