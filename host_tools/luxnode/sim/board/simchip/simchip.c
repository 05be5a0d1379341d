// What the board-faithful unix build (luxnode sim --faithful) changes below Python, where
// the simulated board's Python modules cannot reach: the chip's wall clock, its lwIP
// socket options, a dead network path and its watchdog.
//
// The clock.
// An ESP32 or ESP8266 starts its clock at 2000-01-01 00:00:00 on power-on and keeps
// it until the firmware sets it (machine.RTC().datetime(...), as ntptime does). Its
// mbedTLS checks certificate dates against that clock. This module replaces the C
// library's time() and gettimeofday() in the binary, so the unix port's `time`
// module, its mbedTLS and everything else read the board's clock, not the host's.
// Monotonic time (ticks_ms, select timeouts) is untouched.
//
// LUXNODE_SIM_CLOCK_OFFSET (seconds, board minus host) starts the clock where it
// was before a reset; without it the clock starts at 2000-01-01 (a power-on).
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "py/qstr.h"
#include "py/runtime.h"

#define SECONDS_1970_TO_2000 (946684800LL)

static long long board_at_base_us;  // board clock (us since 1970) at mono_at_base_us
static long long mono_at_base_us;
static int clock_ready;

static long long clock_us(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long board_us(void) {
    if (!clock_ready) {
        const char *offset = getenv("LUXNODE_SIM_CLOCK_OFFSET");
        mono_at_base_us = clock_us(CLOCK_MONOTONIC);
        if (offset && *offset) {
            board_at_base_us = clock_us(CLOCK_REALTIME) + atoll(offset) * 1000000LL;
        } else {
            board_at_base_us = SECONDS_1970_TO_2000 * 1000000LL;
        }
        clock_ready = 1;
    }
    return board_at_base_us + clock_us(CLOCK_MONOTONIC) - mono_at_base_us;
}

time_t time(time_t *out) {
    time_t now = (time_t)(board_us() / 1000000);
    if (out) {
        *out = now;
    }
    return now;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    long long now = board_us();
    tv->tv_sec = (time_t)(now / 1000000);
    tv->tv_usec = (suseconds_t)(now % 1000000);
    return 0;
}

// _simchip.set(seconds since 1970): the clock as RTC().datetime(...) sets it.
static mp_obj_t simclock_set(mp_obj_t seconds) {
    board_us();
    // An int: a single-precision float would round today's seconds to a minute or two.
    board_at_base_us = (long long)mp_obj_int_get_uint_checked(seconds) * 1000000LL;
    mono_at_base_us = clock_us(CLOCK_MONOTONIC);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simclock_set_obj, simclock_set);

// _simchip.offset(): board clock minus host clock in whole seconds (kept across resets).
static mp_obj_t simclock_offset(void) {
    return mp_obj_new_int_from_ll((board_us() - clock_us(CLOCK_REALTIME)) / 1000000);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_offset_obj, simclock_offset);

// _simchip.us(): board clock in microseconds since 1970.
static mp_obj_t simclock_us(void) {
    return mp_obj_new_int_from_ll(board_us());
}
static MP_DEFINE_CONST_FUN_OBJ_0(simclock_us_obj, simclock_us);

// Socket options. The unix port's socket.setsockopt(level, option, value) hands its numbers
// to the C library's setsockopt(); this replaces that with what the chip's lwIP binding does
// with them, once the frozen socket.py has said which chip (_simchip.lwip(8266 or 32)):
// - ESP8266 (extmod/modlwip.c): the level is ignored; SO_REUSEADDR 0x04, SO_BROADCAST 0x20,
//   TCP_NODELAY 0x40 (lwIP's TF_NODELAY), IP_ADD/DROP_MEMBERSHIP 0x400/0x401, 20 (callback)
//   work; anything else prints "Warning: lwip.setsockopt() not implemented" and is ignored;
// - ESP32 (ports/esp32/modsocket.c, lwIP's sockets.h): the level is ignored; SO_REUSEADDR 4,
//   SO_BROADCAST 0x20, SO_BINDTODEVICE 0x100b, TCP_NODELAY 1, IP_ADD_MEMBERSHIP 3, 20 work;
//   anything else prints "Warning: lwip.setsockopt() option not implemented".
static int lwip_binding;  // 0: the host's numbers; 8266 or 32: that chip's

// Straight to stdout, as the port's printf does: the unix port calls setsockopt() with the
// GIL released, so nothing of MicroPython's own printing may run here.
static int lwip_warning(const char *text) {
    ssize_t written = write(STDOUT_FILENO, text, strlen(text));
    (void)written;
    return 0;
}

static int host_setsockopt(int fd, int level, int option, const void *value, socklen_t len) {
    return syscall(SYS_setsockopt, fd, level, option, value, len);
}

int setsockopt(int fd, int level, int option, const void *value, socklen_t len) {
    if (lwip_binding == 0 || (level == SOL_SOCKET && (option == SO_RCVTIMEO || option == SO_SNDTIMEO)
                              && len == sizeof(struct timeval))) {
        // the host's numbers, or the unix port's own settimeout() (ports/unix/modsocket.c),
        // which the chips do inside their socket layer too
        return host_setsockopt(fd, level, option, value, len);
    }
    switch (option) {
        case 20:
            return 0;  // registers a Python callback on the chip; nothing to do on the host
        case 0x04:
            return host_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, value, len);
        case 0x20:
            return host_setsockopt(fd, SOL_SOCKET, SO_BROADCAST, value, len);
    }
    if (lwip_binding == 8266) {
        switch (option) {
            case 0x40:
                return host_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, value, len);
            case 0x400:
                return host_setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, value, len);
            case 0x401:
                return host_setsockopt(fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, value, len);
        }
        return lwip_warning("Warning: lwip.setsockopt() not implemented\n");
    }
    switch (option) {
        case 0x01:
            return host_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, value, len);
        case 0x03:
            return host_setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, value, len);
        case 0x100b:
            return host_setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, value, len);
    }
    return lwip_warning("Warning: lwip.setsockopt() option not implemented\n");
}

// _simchip.lwip(8266 | 32 | 0): which chip's socket option numbers setsockopt() takes.
static mp_obj_t simchip_lwip(mp_obj_t binding) {
    lwip_binding = mp_obj_get_int(binding);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simchip_lwip_obj, simchip_lwip);

// A dead network path (control line "net blackhole on|off", _simchip.blackhole(on)): the
// broker's host lost power or the uplink dropped while the TCP connection stays open, so no
// segment is acknowledged. A loopback peer's kernel always acknowledges, so this replaces
// read(), write(), connect() and close() for the chip's TCP sockets (those connected to an
// IPv4 address once socket.py has said which chip) and, while the path is dead, keeps what
// they write here as lwIP keeps unacknowledged segments. What had reached the board when the
// path died (in the host's buffer then) is still read; what comes later is dropped. When the
// queue is full a write does what the chip's socket does:
// - ESP8266 (extmod/modlwip.c lwip_tcp_send; liblwip_open from esp-open-lwip
//   sdk-1.5.0-experimental, lwipopts.h: TCP_MSS 536, TCP_SND_BUF 2 * TCP_MSS,
//   TCP_SND_QUEUELEN (4 * TCP_SND_BUF + TCP_MSS - 1) / TCP_MSS = 8, TCP_OVERSIZE TCP_MSS,
//   LWIP_NETIF_TX_SINGLE_PBUF 1): no send buffer left: EAGAIN (non-blocking), else wait;
//   pbufs full: tcp_write gives ERR_MEM, and even a non-blocking write retries 200 times with
//   mp_hal_delay_ms(50) between, 10 s, whose event loop no longer feeds the watchdog once WDT()
//   exists (ets_loop_dont_feed_sw_wdt), then fails with ENOMEM (error_lookup_table[-ERR_MEM]).
//   How many pbufs a write takes is tcp_write's (tcp_out.c), modelled in net_tcp_write;
//   with TCP_NODELAY, until a retransmission timeout, each write goes out at once (a window of
//   at least TCP_SND_BUF) as segments of its own; with Nagle a short write waits unsent while
//   anything is unacknowledged and the next ones fill its pbuf; after a timeout part of the
//   queue waits unsent and a write may chain one more pbuf to its last segment (net_output,
//   net_rto);
// - ESP32 (ports/esp32/modsocket.c over lwIP's sockets; ESP-IDF's components/lwip/Kconfig:
//   TCP_MSS 1440, TCP_SND_BUF 5760, and lwIP's default TCP_SND_QUEUELEN, 16 pbufs): a
//   write takes one pbuf per TCP_MSS bytes; a non-blocking write that finds the queue full
//   gives EAGAIN.
// When the path comes back the segments held arrive (as retransmissions would), in order.
// New connections still open (the SYN gets through), and what they send is held too.
#define NET_FDS 64
#define NET_HELD_MAX 5760
#define NET_SEGS 16
#define ESP8266_MSS 536
#define ESP8266_SND_BUF (2 * ESP8266_MSS)
#define ESP8266_SND_QUEUELEN 8
struct net_socket {
    uint8_t tracked;
    uint8_t pbufs;  // held, as lwIP counts them against TCP_SND_QUEUELEN (snd_queuelen)
    uint16_t bytes;  // held, against TCP_SND_BUF
    uint16_t arriving;  // bytes that had reached the board when the path died: still read
    // the ESP8266's segments held (pcb->unacked, then pcb->unsent), as tcp_write builds them
    uint8_t segments;
    uint8_t sent;  // how many of them are on pcb->unacked (sent); the rest wait on pcb->unsent
    uint8_t retransmits;  // pcb->nrtx
    uint16_t oversize;  // pcb->unsent_oversize
    uint16_t segment_len[NET_SEGS];
    long long rto_ms;  // when the next retransmission timeout fires (0: nothing held)
    uint8_t data[NET_HELD_MAX];
};
static struct net_socket net_sockets[NET_FDS];
static int net_dead;

static int net_held(int fd) {
    return net_dead && fd >= 0 && fd < NET_FDS && net_sockets[fd].tracked;
}

static void net_forget(struct net_socket *s) {
    s->pbufs = 0;
    s->bytes = 0;
    s->arriving = 0;
    s->segments = 0;
    s->sent = 0;
    s->retransmits = 0;
    s->oversize = 0;
    s->rto_ms = 0;
}

static int net_blocking(int fd) {
    return !(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

static void net_sleep_ms(long long ms) {
    struct timespec left = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&left, &left) == -1 && errno == EINTR) {
    }
}

// A blocking socket waits as long as its timeout (settimeout(): SO_SNDTIMEO / SO_RCVTIMEO),
// without one for ever: the path cannot come back while the board is stuck here.
static void net_wait(int fd, int option) {
    struct timeval timeout = {0, 0};
    socklen_t len = sizeof(timeout);
    getsockopt(fd, SOL_SOCKET, option, &timeout, &len);
    long long ms = (long long)timeout.tv_sec * 1000 + timeout.tv_usec / 1000;
    if (!ms) {
        for (;;) {
            pause();
        }
    }
    net_sleep_ms(ms);
}

// No room for a write: a non-blocking socket says EAGAIN, a blocking one times out.
static ssize_t net_full(int fd) {
    if (!net_blocking(fd)) {
        errno = EAGAIN;
        return -1;
    }
    net_wait(fd, SO_SNDTIMEO);
    errno = ETIMEDOUT;
    return -1;
}

// tcp_output (tcp_out.c): sends what waits on pcb->unsent, in order, while it fits the window
// from the last acknowledged byte and Nagle allows. The window: before a retransmission timeout
// everything (the connection's cwnd, 2 * TCP_MSS from the handshake on, and the broker's window
// hold TCP_SND_BUF); after one, cwnd is a single TCP_MSS (tcp_slowtmr: pcb->cwnd = pcb->mss) and
// stays so, as nothing is acknowledged. Nagle (tcp_do_output_nagle, tcp_impl.h, checked for each
// segment in tcp_output's loop): a segment goes if nothing is unacknowledged, TF_NODELAY is set,
// or it is not the last unsent one, or it is full. An empty pcb->unsent sets unsent_oversize to 0.
static void net_output(struct net_socket *s, int nodelay) {
    unsigned end = 0;
    for (int i = 0; i < s->segments; i++) {
        end += s->segment_len[i];
        if (i < s->sent) {
            continue;
        }
        if (s->retransmits && end > ESP8266_MSS) {
            break;
        }
        if (!nodelay && i > 0 && i == s->segments - 1 && s->segment_len[i] < ESP8266_MSS) {
            break;  // Nagle: a short last segment waits while segments before it are unacknowledged
        }
        s->sent = i + 1;
    }
    if (s->sent == s->segments) {
        s->oversize = 0;
    }
}

// tcp_slowtmr and tcp_rexmit_rto (tcp.c, tcp_out.c): with TCP_SLOW_INTERVAL 250 ms
// (tcp_impl.h) and an RTT under a tick the RTO settles at 3 ticks (sv from 4 to 3, sa 0;
// tcp_in.c), so the first timeout fires 0.5-0.75 s after the first unacknowledged write
// (taken here at its earliest), then every (3 << tcp_backoff[nrtx]) ticks. Each moves
// pcb->unacked to the head of pcb->unsent (pcb->unsent_oversize unchanged: 0 when nothing
// was unsent, though the last segment now has room), counts nrtx and calls tcp_output.
static const uint8_t tcp_backoff[13] = {1, 2, 3, 4, 5, 6, 7, 7, 7, 7, 7, 7, 7};
static void net_rto(struct net_socket *s, long long now_ms, int nodelay) {
    while (s->rto_ms && now_ms >= s->rto_ms) {
        s->rto_ms += (3LL << tcp_backoff[s->retransmits < 12 ? s->retransmits : 12]) * 250;
        s->sent = 0;
        if (s->retransmits < 255) {
            s->retransmits++;
        }
        net_output(s, nodelay);
    }
}

// tcp_write (tcp_out.c) with TCP_WRITE_FLAG_COPY, as modlwip calls it: the pbufs a write of n
// bytes takes, or -1 for ERR_MEM, changing nothing. tcp_write_checks: snd_queuelen >=
// TCP_SND_QUEUELEN is ERR_MEM. Phase 1 copies into the oversize left in the last unsent
// segment's pbuf (no pbuf); Phase 2 chains a new pbuf to that segment for what fits its space;
// Phase 3 makes new segments, one pbuf each, and gives ERR_MEM once the queue would pass
// TCP_SND_QUEUELEN. With LWIP_NETIF_TX_SINGLE_PBUF every pbuf is TCP_MSS long
// (tcp_pbuf_prealloc), so what is left of it is the new oversize. The arithmetic is lwIP's u16.
static int net_tcp_write(struct net_socket *s, uint16_t n) {
    uint16_t pos = 0, oversize = s->oversize, added = 0;
    uint16_t last_len = 0, phase3_segments = 0, phase3_lens[NET_SEGS];
    if (s->pbufs >= ESP8266_SND_QUEUELEN) {
        return -1;
    }
    if (s->sent < s->segments) {  // pcb->unsent != NULL
        last_len = s->segment_len[s->segments - 1];
        uint16_t space = ESP8266_MSS - last_len;
        if (oversize > 0) {  // Phase 1
            uint16_t used = oversize < n ? oversize : n;
            pos += used;
            oversize -= used;
            space -= used;
            last_len += used;
        }
        if (pos < n && space > 0 && s->segment_len[s->segments - 1] > 0) {  // Phase 2
            uint16_t seglen = space < n - pos ? space : n - pos;
            oversize = ESP8266_MSS - seglen;
            pos += seglen;
            last_len += seglen;
            added++;
        }
    }
    while (pos < n) {  // Phase 3
        uint16_t seglen = n - pos > ESP8266_MSS ? ESP8266_MSS : n - pos;
        added++;
        if (s->pbufs + added > ESP8266_SND_QUEUELEN || s->segments + phase3_segments >= NET_SEGS) {
            return -1;
        }
        phase3_lens[phase3_segments++] = seglen;
        oversize = ESP8266_MSS - seglen;
        pos += seglen;
    }
    if (s->sent < s->segments) {
        s->segment_len[s->segments - 1] = last_len;
    }
    for (int i = 0; i < phase3_segments; i++) {
        s->segment_len[s->segments++] = phase3_lens[i];
    }
    s->oversize = oversize;  // pcb->unsent_oversize = oversize
    return added;
}

static ssize_t net_hold(int fd, const void *buf, size_t len) {
    struct net_socket *s = &net_sockets[fd];
    int esp8266 = lwip_binding == 8266;
    size_t room = (esp8266 ? ESP8266_SND_BUF : 5760) - s->bytes;
    if (room == 0) {  // tcp_sndbuf() is 0
        return net_full(fd);
    }
    size_t n = len < room ? len : room;
    if (esp8266) {
        long long now_ms = clock_us(CLOCK_MONOTONIC) / 1000;
        int nodelay = 0;  // TF_NODELAY: socket.py's setsockopt set the host socket's TCP_NODELAY
        socklen_t nodelay_len = sizeof(nodelay);
        getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nodelay_len);
        net_rto(s, now_ms, nodelay);
        int pbufs = net_tcp_write(s, (uint16_t)n);
        if (pbufs < 0) {
            net_sleep_ms(200 * 50);  // the watchdog's signal ends it on the way, as on the chip
            errno = ENOMEM;
            return -1;
        }
        s->pbufs += pbufs;
        if (!s->rto_ms) {
            s->rto_ms = now_ms + 2 * 250;  // rtime 0 now, 3 ticks: the first may come at once
        }
        net_output(s, nodelay);
    } else {
        size_t pbufs = (n + 1440 - 1) / 1440;
        if (s->pbufs + pbufs > 16) {
            return net_full(fd);
        }
        s->pbufs += pbufs;
    }
    memcpy(s->data + s->bytes, buf, n);
    s->bytes += n;
    return n;
}

static ssize_t net_incoming(int fd, void *buf, size_t len) {
    struct net_socket *s = &net_sockets[fd];
    if (s->arriving) {  // it had reached the board before the path died
        ssize_t n = syscall(SYS_read, fd, buf, len < s->arriving ? len : s->arriving);
        if (n > 0) {
            s->arriving -= n;
        }
        return n;
    }
    uint8_t sink[512];
    while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
    if (net_blocking(fd)) {
        net_wait(fd, SO_RCVTIMEO);
    }
    errno = EAGAIN;
    return -1;
}

ssize_t write(int fd, const void *buf, size_t len) {
    if (net_held(fd)) {
        return net_hold(fd, buf, len);
    }
    return syscall(SYS_write, fd, buf, len);
}

ssize_t read(int fd, void *buf, size_t len) {
    if (net_held(fd)) {
        return net_incoming(fd, buf, len);
    }
    return syscall(SYS_read, fd, buf, len);
}

int connect(int fd, const struct sockaddr *address, socklen_t len) {
    if (lwip_binding && fd >= 0 && fd < NET_FDS && address->sa_family == AF_INET) {
        int type = 0;
        socklen_t type_len = sizeof(type);
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len);
        net_sockets[fd].tracked = type == SOCK_STREAM;
        net_forget(&net_sockets[fd]);
    }
    return syscall(SYS_connect, fd, address, len);
}

int close(int fd) {
    if (fd >= 0 && fd < NET_FDS) {
        net_sockets[fd].tracked = 0;
    }
    return syscall(SYS_close, fd);
}

// _simchip.blackhole(on): the path dies (what has arrived stays readable), or comes back
// with what it held.
static mp_obj_t simchip_blackhole(mp_obj_t on) {
    int dead = mp_obj_is_true(on);
    for (int fd = 0; fd < NET_FDS; fd++) {
        struct net_socket *s = &net_sockets[fd];
        if (dead && !net_dead && s->tracked) {
            int available = 0;
            ioctl(fd, FIONREAD, &available);
            s->arriving = available > 0 ? available : 0;
        } else if (!dead && net_dead) {
            if (s->tracked && s->bytes) {
                ssize_t sent = send(fd, s->data, s->bytes, MSG_DONTWAIT | MSG_NOSIGNAL);
                (void)sent;  // a peer gone meanwhile resets the connection, as it would
            }
            net_forget(s);
        }
    }
    net_dead = dead;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simchip_blackhole_obj, simchip_blackhole);

// The watchdog.
// On the chips it is a timer interrupt, so it resets a loop that never comes back: a
// Python `while True: pass`, or a C call blocked in recv(). Here a one-shot SIGALRM is
// armed for the moment the chip would reset and re-armed on every feed; its handler
// only reads the clock and, when the deadline has passed, writes the board's reset
// lines with write(2) and stops the process. No thread (one beside the firmware
// deadlocked this build's GC) and nothing that allocates or takes a lock. Between
// feeds no signal arrives at all, so blocking syscalls are never interrupted while the
// board runs.
// When the chip resets after a feed (machine.py says which chip, _simchip.watchdog):
// - ESP8266: the SDK's 1.6 s timer ticks from boot and resets at its second tick
//   after the last feed (ets_alt_task.c): tick_ms 1600, ticks 2;
// - ESP32: the task watchdog's hardware timer restarts on each feed and fires
//   timeout ms later: tick_ms 1, ticks = the timeout.
static long long boot_ms;                // monotonic ms at process start (the chip's boot)
static long long wdt_fed_ms;             // monotonic ms of the last feed
static volatile uint32_t wdt_tick_ms;    // 0: not armed
static uint32_t wdt_ticks;
static volatile uint32_t wdt_deadline;   // low 32 bits of the reset's monotonic ms: one store
static char wdt_lines[200];              // what the board prints as it resets
static size_t wdt_lines_len;
static int wdt_waits_for_kill;           // under the sim's supervisor, which kills the board

static long long mono_ms(void) {
    return clock_us(CLOCK_MONOTONIC) / 1000;
}

__attribute__((constructor)) static void note_boot(void) {
    boot_ms = mono_ms();
}

static void wdt_timer(long long ms) {  // one shot, ms from now (0 stops it)
    struct itimerval when = {{0, 0}, {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &when, NULL);
}

static void wdt_expired(int sig) {
    (void)sig;
    if (!wdt_tick_ms) {
        return;  // stopped while the signal was on its way
    }
    int32_t left = (int32_t)(wdt_deadline - (uint32_t)mono_ms());
    if (left > 0) {  // fed meanwhile: wait for the new deadline
        wdt_timer(left);
        return;
    }
    ssize_t written = write(STDOUT_FILENO, wdt_lines, wdt_lines_len);
    (void)written;
    if (!wdt_waits_for_kill) {
        _exit(1);  // as machine.py's reset ends a board run without the supervisor
    }
    for (;;) {
        pause();  // the chip stops here; the supervisor kills it and boots it again
    }
}

static void wdt_arm(void) {
    long long deadline = boot_ms + ((wdt_fed_ms - boot_ms) / wdt_tick_ms + wdt_ticks) * wdt_tick_ms;
    long long left = deadline - mono_ms();
    wdt_deadline = (uint32_t)deadline;
    wdt_timer(left > 0 ? left : 1);  // already past (a shorter ESP32 timeout): at once
}

// _simchip.feed(): the firmware's WDT.feed().
static mp_obj_t simchip_feed(void) {
    if (wdt_tick_ms) {
        wdt_fed_ms = mono_ms();
        wdt_arm();
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(simchip_feed_obj, simchip_feed);

// _simchip.watchdog(tick_ms, ticks, lines, waits_for_kill, feed): arm (or re-time) the
// watchdog, printing `lines` when it resets; feed=False keeps the last feed's time (the
// ESP32's WDT(timeout=) again: a new timeout, no feed). tick_ms 0 stops it (a reset).
static mp_obj_t simchip_watchdog(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    uint32_t tick_ms = mp_obj_get_int(args[0]);
    if (!tick_ms) {
        wdt_tick_ms = 0;
        wdt_timer(0);
        return mp_const_none;
    }
    size_t len;
    const char *lines = mp_obj_str_get_data(args[2], &len);
    if (len > sizeof(wdt_lines)) {
        mp_raise_ValueError(MP_ERROR_TEXT("reset lines too long"));
    }
    wdt_timer(0);  // no signal while the fields change
    memcpy(wdt_lines, lines, len);
    wdt_lines_len = len;
    wdt_waits_for_kill = mp_obj_is_true(args[3]);
    if (!wdt_tick_ms || mp_obj_is_true(args[4])) {
        wdt_fed_ms = mono_ms();
    }
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = wdt_expired;
    action.sa_flags = SA_RESTART;  // a blocking call the signal lands in carries on
    sigfillset(&action.sa_mask);
    sigaction(SIGALRM, &action, NULL);
    wdt_ticks = mp_obj_get_int(args[1]);
    wdt_tick_ms = tick_ms;
    wdt_arm();
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(simchip_watchdog_obj, 5, 5, simchip_watchdog);

// (qstrs, bytes): the qstrs interned since start and the heap their pools hold. The pools grow
// by doubling (20, 40, 80, 160, 320 entries on both ports), so one more qstr may cost kilobytes.
static mp_obj_t simchip_qstrs(void) {
    size_t n_pool, n_qstr, n_str_data_bytes, n_total_bytes;
    qstr_pool_info(&n_pool, &n_qstr, &n_str_data_bytes, &n_total_bytes);
    mp_obj_t info[2] = { MP_OBJ_NEW_SMALL_INT(n_qstr), MP_OBJ_NEW_SMALL_INT(n_total_bytes - n_str_data_bytes) };
    return mp_obj_new_tuple(2, info);
}
static MP_DEFINE_CONST_FUN_OBJ_0(simchip_qstrs_obj, simchip_qstrs);

// _simchip.getenv(name): the runner's setting for the board model, or None. The ESP8266's os has
// no getenv (nor has its faithful build: chip_config.h), so the board reads its settings here.
static mp_obj_t simchip_getenv(mp_obj_t name) {
    const char *value = getenv(mp_obj_str_get_str(name));
    return value ? mp_obj_new_str(value, strlen(value)) : mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(simchip_getenv_obj, simchip_getenv);

// _simchip.power_off(): the board loses power (its runner is gone): the process ends at once.
static mp_obj_t simchip_power_off(void) {
    kill(getpid(), SIGKILL);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(simchip_power_off_obj, simchip_power_off);

static const mp_rom_map_elem_t simchip_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__simchip) },
    { MP_ROM_QSTR(MP_QSTR_set), MP_ROM_PTR(&simclock_set_obj) },
    { MP_ROM_QSTR(MP_QSTR_offset), MP_ROM_PTR(&simclock_offset_obj) },
    { MP_ROM_QSTR(MP_QSTR_us), MP_ROM_PTR(&simclock_us_obj) },
    { MP_ROM_QSTR(MP_QSTR_lwip), MP_ROM_PTR(&simchip_lwip_obj) },
    { MP_ROM_QSTR(MP_QSTR_watchdog), MP_ROM_PTR(&simchip_watchdog_obj) },
    { MP_ROM_QSTR(MP_QSTR_feed), MP_ROM_PTR(&simchip_feed_obj) },
    { MP_ROM_QSTR(MP_QSTR_qstrs), MP_ROM_PTR(&simchip_qstrs_obj) },
    { MP_ROM_QSTR(MP_QSTR_blackhole), MP_ROM_PTR(&simchip_blackhole_obj) },
    { MP_ROM_QSTR(MP_QSTR_getenv), MP_ROM_PTR(&simchip_getenv_obj) },
    { MP_ROM_QSTR(MP_QSTR_power_off), MP_ROM_PTR(&simchip_power_off_obj) },
};
static MP_DEFINE_CONST_DICT(simchip_globals, simchip_globals_table);

const mp_obj_module_t simchip_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&simchip_globals,
};

MP_REGISTER_MODULE(MP_QSTR__simchip, simchip_module);
