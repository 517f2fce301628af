/*
 * bakeplan's Solo5 probe: a unikernel that acquires every device of its manifest and
 * reports, on the console, what it was given.
 *
 * The harness writes "probe_devices.h" from the manifest bakeplan emitted (the same
 * names, in the same order, with their kinds) and links this file with the manifest
 * solo5-elftool generated from it.  Every report is one line written in one console
 * write, so that Solo5's own log lines cannot split it:
 *
 *   PROBE cmdline [TEXT]                        the command line Solo5 handed over
 *   PROBE net NAME mac=MAC mtu=N                after sending one frame (see below)
 *   PROBE block NAME block_size=N capacity=N marker=TEXT
 *   PROBE fail NAME WHAT                        an acquire, a read or a write failed
 *   PROBE done                                  every device was acquired
 *
 * A block device's marker is the printable text at the start of its first block: the
 * harness writes a different one into each image.  A tap shows nothing of itself to
 * the guest, so on each NIC the probe sends a broadcast frame of EtherType 0x88b5
 * (local experimental) whose payload is "bakeplan-probe NAME"; the harness, listening
 * on every tap, sees which name came out of which tap.
 *
 * On virtio a write only queues the frame: QEMU sends it from its own main loop, later,
 * and a guest that powers off at once can take its last frames with it.  The probe
 * therefore waits a moment after its last write, in solo5_yield, which halts the vCPU
 * and lets QEMU's loop run.  The tenders write synchronously; for them it is only a
 * pause.
 */

#include "solo5.h"
#include "probe_devices.h"

#define ETHERTYPE_PROBE 0x88b5
#define SETTLE_NS 300000000ULL /* 0.3 s: ample for QEMU's transmit bottom half */

static char line[512];
static size_t used;

static void put(const char *s)
{
    while (*s && used < sizeof line - 1)
        line[used++] = *s++;
}

static void put_u(uint64_t v)
{
    char b[21];
    int i = 20;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(&b[i]);
}

static void put_mac(const uint8_t *mac)
{
    static const char digits[] = "0123456789abcdef";
    char b[4] = {0, 0, ':', 0};
    for (int i = 0; i < SOLO5_NET_ALEN; i++) {
        b[0] = digits[mac[i] >> 4];
        b[1] = digits[mac[i] & 15];
        b[2] = i + 1 < SOLO5_NET_ALEN ? ':' : 0;
        put(b);
    }
}

/* One report line, in one console write. */
static void flush(void)
{
    line[used++] = '\n';
    solo5_console_write(line, used);
    used = 0;
}

static int fail(const char *name, const char *what)
{
    put("PROBE fail ");
    put(name);
    put(" ");
    put(what);
    flush();
    return 1;
}

static uint8_t sector[4096];
static uint8_t frame[128];

static int probe_net(const char *name)
{
    solo5_handle_t h;
    struct solo5_net_info info;
    if (solo5_net_acquire(name, &h, &info) != SOLO5_R_OK)
        return fail(name, "net-acquire");
    size_t n = 0;
    for (int i = 0; i < SOLO5_NET_ALEN; i++)
        frame[n++] = 0xff;
    for (int i = 0; i < SOLO5_NET_ALEN; i++)
        frame[n++] = info.mac_address[i];
    frame[n++] = ETHERTYPE_PROBE >> 8;
    frame[n++] = ETHERTYPE_PROBE & 0xff;
    for (const char *p = "bakeplan-probe "; *p; p++)
        frame[n++] = (uint8_t)*p;
    for (const char *p = name; *p && n < sizeof frame; p++)
        frame[n++] = (uint8_t)*p;
    while (n < 60) /* the shortest Ethernet frame, without its checksum */
        frame[n++] = 0;
    if (solo5_net_write(h, frame, n) != SOLO5_R_OK)
        return fail(name, "net-write");
    put("PROBE net ");
    put(name);
    put(" mac=");
    put_mac(info.mac_address);
    put(" mtu=");
    put_u(info.mtu);
    flush();
    return 0;
}

static int probe_block(const char *name)
{
    solo5_handle_t h;
    struct solo5_block_info info;
    if (solo5_block_acquire(name, &h, &info) != SOLO5_R_OK)
        return fail(name, "block-acquire");
    if (info.block_size > sizeof sector ||
        solo5_block_read(h, 0, sector, info.block_size) != SOLO5_R_OK)
        return fail(name, "block-read");
    size_t end = 0;
    while (end < 64 && sector[end] > ' ' && sector[end] < 127)
        end++;
    sector[end] = 0;
    put("PROBE block ");
    put(name);
    put(" block_size=");
    put_u(info.block_size);
    put(" capacity=");
    put_u(info.capacity);
    put(" marker=");
    put((const char *)sector);
    flush();
    return 0;
}

/* Halt until SETTLE_NS have passed; input (none is expected) only wakes it early. */
static void settle(void)
{
    solo5_time_t deadline = solo5_clock_monotonic() + SETTLE_NS;
    solo5_handle_set_t ready;
    while (solo5_clock_monotonic() < deadline)
        solo5_yield(deadline, &ready);
}

int solo5_app_main(const struct solo5_start_info *si)
{
    int failed = 0;
    int nets = 0;
    put("PROBE cmdline [");
    put(si->cmdline);
    put("]");
    flush();
    for (size_t i = 0; i < sizeof probe_devices / sizeof probe_devices[0]; i++) {
        if (probe_devices[i].net) {
            failed |= probe_net(probe_devices[i].name);
            nets++;
        } else {
            failed |= probe_block(probe_devices[i].name);
        }
    }
    if (nets)
        settle();
    if (failed)
        return 1;
    put("PROBE done");
    flush();
    return 0;
}
