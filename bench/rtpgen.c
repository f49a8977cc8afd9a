/* rtpgen: the phones of bench/rtp_relay.py, in C so that they cost little and keep time.
 *
 * It plays 2*calls RTP streams (G.711, 20 ms, 172-octet packets; RFC 3550 §5.1 header) through
 * a relay on 127.0.0.1, measures loss, one-way transit and added jitter from kernel arrival
 * stamps, and prints JSON lines on stdout. Linux, C11, libc only.
 *
 * Protocol with the driver (one line each way per step, stdout JSON, stdin text):
 *   out: {"a": PORT, "b": PORT}            the two phone sockets, bound on 127.0.0.1
 *   in:  ports P0 P1 ... P(streams-1)      the relay port each stream sends to
 *   ...  warm-up: the normal schedule for --warmup seconds, then a drain
 *   out: {"event": "warm", ...}             warm-up done, sockets quiet
 *   in:  go                                 the relay has taken its "start" marks
 *   ...  measured run: --seconds of the schedule
 *   out: {"event": "sent"}                  last packet sent (the driver stops the relay's clock)
 *   ...  drain until 0.3 s quiet (hard stop 5 s)
 *   out: {"event": "done", ...}             the results
 * Every wait is bounded: the program exits on its own (status 2) if the driver goes away.
 *
 * Streams: stream i belongs to call i/2; even i sends from the A socket, odd i from the B socket,
 * to relay port ports[i]; SSRC = i, sequence number = round + 1 (the same for every stream in
 * one 20 ms round), timestamp = seq * 160. Stream i sends in slot i % groups of each round (the
 * slots are ptime/groups apart). The send time of each (stream, seq) is CLOCK_REALTIME read
 * right before its own sendto(), one system call per packet: a sendmmsg() batch would stamp
 * later packets of the batch before they really leave. Arrival times are the kernel's
 * (SO_TIMESTAMPNS, CLOCK_REALTIME too), read in batches by recvmmsg(), so how late this
 * program gets round to reading does not count as transit.
 *
 * Percentiles come from histograms at 1 µs resolution (up to 4.19 s; beyond that the top bin,
 * reported as the maximum seen).
 *
 * Options: --streams N (required), --seconds S (5), --warmup S (6; at least one round),
 * --groups G (20), --ptime S (0.02), --route forward|transcode, --rcvbuf BYTES (32 MiB, FORCE as
 * root), --cpu N (pin to CPU N), --rt PRIO (SCHED_FIFO; 0, the default, keeps SCHED_OTHER).
 * Pacing: CLOCK_MONOTONIC, timer slack 1 ns, one clock_nanosleep(TIMER_ABSTIME) per slot.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RTP_SIZE 172
#define PAYLOAD 160
#define BATCH 64
#define HIST_BINS (1u << 22) /* µs */
#define QUIET_NS 300000000LL
#define HARD_STOP_NS 5000000000LL
#define STDIN_TIMEOUT_MS 120000
#define MAX_ROUNDS 65000 /* sequence numbers never wrap */

typedef struct {
    uint64_t *bins;
    uint32_t size; /* bins of 1 µs; larger values go to the top one */
    uint64_t count;
    int64_t max;
} hist_t;

typedef struct {
    uint32_t seq; /* 0: none yet */
    int64_t sent, arrived;
} last_t;

static struct {
    int streams, groups, cpu, transcode, rt;
    double seconds, warmup, ptime;
    long rcvbuf;
} opt = {0, 20, -1, 0, 0, 5.0, 6.0, 0.02, 32L * 1024 * 1024};

static int sock[2];
static struct sockaddr_in *dest;
static int64_t *stamps; /* streams x ring send times (ns); 0 = not outstanding */
static uint32_t ring_mask;
static last_t *last;
static uint32_t first_measured; /* seq of the first measured round; 0: not measuring */
static uint64_t arrivals, received, stray, late_warm;
static hist_t transit, jitter, lateness;

static void die(const char *what) {
    fprintf(stderr, "rtpgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void hist_add(hist_t *h, int64_t us) {
    if (us < 0)
        us = 0;
    if (us > h->max)
        h->max = us;
    h->bins[us < h->size ? us : h->size - 1]++;
    h->count++;
}

/* The value at index floor(q * n) of the sorted values (as the Python generator takes it). */
static double hist_percentile(const hist_t *h, double q) {
    if (h->count == 0)
        return -1.0;
    uint64_t rank = (uint64_t)(q * (double)h->count), cum = 0;
    if (rank >= h->count)
        rank = h->count - 1;
    for (uint32_t b = 0; b < h->size; b++) {
        cum += h->bins[b];
        if (cum > rank)
            return b == h->size - 1 ? (double)h->max : (double)b;
    }
    return (double)h->max;
}

static void on_packet(const unsigned char *p, size_t len, int64_t arrived) {
    if (len < 12 || p[0] != 0x80) {
        stray++;
        return;
    }
    uint32_t seq = ((uint32_t)p[2] << 8) | p[3];
    uint32_t ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
    if (ssrc >= (uint32_t)opt.streams || seq == 0) {
        stray++;
        return;
    }
    int64_t *slot = &stamps[(size_t)ssrc * (ring_mask + 1) + (seq & ring_mask)];
    int64_t sent = *slot;
    if (sent == 0) { /* a duplicate, or never sent */
        stray++;
        return;
    }
    *slot = 0;
    arrivals++;
    last_t *l = &last[ssrc];
    if (first_measured && seq >= first_measured) {
        received++;
        hist_add(&transit, (arrived - sent) / 1000);
        if (l->seq >= first_measured && seq == l->seq + 1) {
            int64_t d = (arrived - l->arrived) - (sent - l->sent);
            hist_add(&jitter, (d < 0 ? -d : d) / 1000);
        }
    } else if (first_measured) {
        late_warm++; /* a warm-up packet that outlived the warm-up drain */
    }
    l->seq = seq;
    l->sent = sent;
    l->arrived = arrived;
}

/* Read everything queued on both sockets; returns the number of datagrams. */
static uint64_t drain(void) {
    static unsigned char data[BATCH][256];
    static char control[BATCH][CMSG_SPACE(sizeof(struct timespec))];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    uint64_t total = 0;
    for (int s = 0; s < 2; s++) {
        for (;;) {
            for (int k = 0; k < BATCH; k++) {
                iov[k].iov_base = data[k];
                iov[k].iov_len = sizeof data[k];
                memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
                msgs[k].msg_hdr.msg_iov = &iov[k];
                msgs[k].msg_hdr.msg_iovlen = 1;
                msgs[k].msg_hdr.msg_control = control[k];
                msgs[k].msg_hdr.msg_controllen = sizeof control[k];
            }
            int n = recvmmsg(sock[s], msgs, BATCH, MSG_DONTWAIT, NULL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    break;
                die("recvmmsg");
            }
            int64_t fallback = 0;
            for (int k = 0; k < n; k++) {
                int64_t arrived = 0;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[k].msg_hdr); c;
                     c = CMSG_NXTHDR(&msgs[k].msg_hdr, c)) {
                    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
                        struct timespec ts;
                        memcpy(&ts, CMSG_DATA(c), sizeof ts);
                        arrived = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
                    }
                }
                if (arrived == 0) {
                    if (fallback == 0)
                        fallback = now_ns(CLOCK_REALTIME);
                    arrived = fallback;
                }
                on_packet(data[k], msgs[k].msg_len, arrived);
            }
            total += (uint64_t)n;
            if (n < BATCH)
                break;
        }
    }
    return total;
}

/* Drain both sockets, wait on them (draining) while more than POLL_NS are left before the
 * monotonic time `due`, then sleep the last stretch with clock_nanosleep(TIMER_ABSTIME) so the
 * slot starts on time. With slots shorter than POLL_NS that is one wake-up per slot: the
 * arrival stamps are the kernel's, so reading once per slot loses nothing, and every wake-up
 * costs (tens of µs in a VM). */
#define POLL_NS 2000000LL
static void wait_until(int64_t due) {
    struct pollfd fds[2] = {{sock[0], POLLIN, 0}, {sock[1], POLLIN, 0}};
    for (;;) {
        drain();
        int64_t left = due - now_ns(CLOCK_MONOTONIC);
        if (left <= 0)
            return;
        if (left <= POLL_NS)
            break;
        left -= POLL_NS / 2;
        struct timespec ts = {left / 1000000000LL, left % 1000000000LL};
        if (ppoll(fds, 2, &ts, NULL) < 0 && errno != EINTR)
            die("ppoll");
    }
    struct timespec ts = {due / 1000000000LL, due % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

typedef struct {
    uint64_t sent, send_errors;
    int64_t start, end; /* monotonic ns: first slot due, last send done */
    int64_t late_max;   /* ns */
} run_t;

/* Send `rounds` rounds of every stream, round r carrying seq first_seq + r. */
static run_t paced(uint32_t first_seq, uint32_t rounds) {
    unsigned char pkt[2][RTP_SIZE];
    for (int s = 0; s < 2; s++) {
        int pt = (s == 1 && opt.transcode) ? 8 : 0;
        memset(pkt[s], pt == 8 ? 0xd5 : 0xff, sizeof pkt[s]);
        pkt[s][0] = 0x80;
        pkt[s][1] = (unsigned char)pt;
    }
    run_t run = {0};
    int64_t slot_ns = (int64_t)(opt.ptime * 1e9) / opt.groups;
    uint64_t slots = (uint64_t)rounds * (uint64_t)opt.groups;
    run.start = now_ns(CLOCK_MONOTONIC) + 1000000;
    for (uint64_t k = 0; k < slots; k++) {
        int64_t due = run.start + (int64_t)k * slot_ns;
        wait_until(due);
        int64_t late = now_ns(CLOCK_MONOTONIC) - due;
        if (late > run.late_max)
            run.late_max = late;
        if (first_seq >= first_measured && first_measured)
            hist_add(&lateness, late / 1000);
        uint32_t seq = first_seq + (uint32_t)(k / (uint64_t)opt.groups);
        uint32_t ts = seq * PAYLOAD;
        for (int i = (int)(k % (uint64_t)opt.groups); i < opt.streams; i += opt.groups) {
            unsigned char *p = pkt[i & 1];
            p[2] = (unsigned char)(seq >> 8);
            p[3] = (unsigned char)seq;
            p[4] = (unsigned char)(ts >> 24);
            p[5] = (unsigned char)(ts >> 16);
            p[6] = (unsigned char)(ts >> 8);
            p[7] = (unsigned char)ts;
            p[8] = (unsigned char)((uint32_t)i >> 24);
            p[9] = (unsigned char)((uint32_t)i >> 16);
            p[10] = (unsigned char)((uint32_t)i >> 8);
            p[11] = (unsigned char)i;
            int64_t *stamp = &stamps[(size_t)i * (ring_mask + 1) + (seq & ring_mask)];
            *stamp = now_ns(CLOCK_REALTIME);
            if (sendto(sock[i & 1], p, RTP_SIZE, 0, (struct sockaddr *)&dest[i], sizeof dest[i]) <
                0) {
                *stamp = 0;
                run.send_errors++;
            } else {
                run.sent++;
            }
        }
        run.end = now_ns(CLOCK_MONOTONIC);
    }
    return run;
}

/* Drain until `QUIET_NS` pass without a datagram (at most HARD_STOP_NS); returns datagrams. */
static uint64_t drain_quiet(void) {
    struct pollfd fds[2] = {{sock[0], POLLIN, 0}, {sock[1], POLLIN, 0}};
    int64_t now = now_ns(CLOCK_MONOTONIC), hard = now + HARD_STOP_NS, quiet = now + QUIET_NS;
    uint64_t total = 0;
    while ((now = now_ns(CLOCK_MONOTONIC)) < quiet && now < hard) {
        uint64_t n = drain();
        total += n;
        if (n)
            quiet = now_ns(CLOCK_MONOTONIC) + QUIET_NS;
        if (ppoll(fds, 2, &(struct timespec){0, 50000000}, NULL) < 0 && errno != EINTR)
            die("ppoll");
    }
    return total + drain();
}

/* One line from stdin (without the newline) within STDIN_TIMEOUT_MS; exits on EOF/timeout. */
static char *read_line(void) {
    static char *buf;
    static size_t cap, len, start;
    if (start) { /* drop the line handed out last time */
        memmove(buf, buf + start, len - start);
        len -= start;
        start = 0;
    }
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + (int64_t)STDIN_TIMEOUT_MS * 1000000;
    for (;;) {
        char *nl = buf ? memchr(buf, '\n', len) : NULL;
        if (nl) {
            *nl = '\0';
            start = (size_t)(nl - buf) + 1;
            return buf;
        }
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            buf = realloc(buf, cap);
            if (!buf)
                die("realloc");
        }
        int64_t left = deadline - now_ns(CLOCK_MONOTONIC);
        struct pollfd in = {0, POLLIN, 0};
        int r = left > 0 ? poll(&in, 1, (int)(left / 1000000) + 1) : 0;
        if (r == 0) {
            fprintf(stderr, "rtpgen: no input from the driver in %d s\n", STDIN_TIMEOUT_MS / 1000);
            exit(2);
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("poll stdin");
        }
        ssize_t n = read(0, buf + len, cap - len - 1);
        if (n == 0) {
            fprintf(stderr, "rtpgen: the driver went away\n");
            exit(2);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read stdin");
        }
        len += (size_t)n;
    }
}

static int open_phone_socket(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind");
    int one = 1;
    if (setsockopt(s, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0)
        die("SO_TIMESTAMPNS");
    int size = (int)opt.rcvbuf; /* as root: room for ~0.5 s of everything relayed to this side */
    if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    size = 4 * 1024 * 1024;
    if (setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
        setsockopt(s, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    return s;
}

static int port_of(int s) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(s, (struct sockaddr *)&a, &len) < 0)
        die("getsockname");
    return ntohs(a.sin_port);
}

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static void usage(void) {
    fprintf(stderr, "usage: rtpgen --streams N [--seconds S] [--warmup S] [--groups G] "
                    "[--ptime S] [--route forward|transcode] [--rcvbuf BYTES] [--cpu N] "
                    "[--rt PRIO]\n");
    exit(2);
}

static void parse_args(int argc, char **argv) {
    for (int k = 1; k < argc; k++) {
        const char *name = argv[k];
        if (k + 1 >= argc)
            usage();
        const char *v = argv[++k];
        char *end;
        if (!strcmp(name, "--route")) {
            if (strcmp(v, "forward") && strcmp(v, "transcode"))
                usage();
            opt.transcode = !strcmp(v, "transcode");
            continue;
        }
        double x = strtod(v, &end);
        if (*end || end == v)
            usage();
        if (!strcmp(name, "--streams"))
            opt.streams = (int)x;
        else if (!strcmp(name, "--seconds"))
            opt.seconds = x;
        else if (!strcmp(name, "--warmup"))
            opt.warmup = x;
        else if (!strcmp(name, "--groups"))
            opt.groups = (int)x;
        else if (!strcmp(name, "--ptime"))
            opt.ptime = x;
        else if (!strcmp(name, "--rcvbuf"))
            opt.rcvbuf = (long)x;
        else if (!strcmp(name, "--cpu"))
            opt.cpu = (int)x;
        else if (!strcmp(name, "--rt"))
            opt.rt = (int)x;
        else
            usage();
    }
    if (opt.streams < 1 || opt.groups < 1 || opt.ptime < 0.001 || opt.seconds < 0 ||
        opt.warmup < 0 || opt.rcvbuf < 4096)
        usage();
}

static uint32_t rounds_for(double seconds) {
    double r = seconds / opt.ptime;
    uint32_t n = (uint32_t)r;
    return (double)n < r - 1e-9 ? n + 1 : n;
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* wake-ups on time, not 50 µs late */
    if (opt.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(opt.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0)
            die("sched_setaffinity");
    }
    if (opt.rt > 0) { /* SCHED_FIFO: other processes on our CPU cannot delay a slot */
        struct sched_param sp = {.sched_priority = opt.rt};
        if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0) {
            fprintf(stderr, "rtpgen: SCHED_FIFO %d: %s (going on without)\n", opt.rt,
                    strerror(errno));
            opt.rt = 0;
        }
    }
    uint32_t warm_rounds = rounds_for(opt.warmup), rounds = rounds_for(opt.seconds);
    if (warm_rounds < 1)
        warm_rounds = 1; /* every leg sees its phone at least once */
    if (rounds < 1)
        rounds = 1;
    if ((uint64_t)warm_rounds + rounds > MAX_ROUNDS) {
        fprintf(stderr, "rtpgen: warm-up + seconds is too long (sequence numbers would wrap)\n");
        return 2;
    }
    uint32_t ring = 64;
    while (ring < warm_rounds + rounds + 2)
        ring <<= 1;
    ring_mask = ring - 1;
    stamps = calloc((size_t)opt.streams * ring, sizeof *stamps);
    last = calloc((size_t)opt.streams, sizeof *last);
    dest = calloc((size_t)opt.streams, sizeof *dest);
    transit.size = jitter.size = HIST_BINS;
    lateness.size = 1u << 20;
    transit.bins = calloc(transit.size, sizeof *transit.bins);
    jitter.bins = calloc(jitter.size, sizeof *jitter.bins);
    lateness.bins = calloc(lateness.size, sizeof *lateness.bins);
    if (!stamps || !last || !dest || !transit.bins || !jitter.bins || !lateness.bins)
        die("calloc");

    sock[0] = open_phone_socket();
    sock[1] = open_phone_socket();
    printf("{\"a\": %d, \"b\": %d}\n", port_of(sock[0]), port_of(sock[1]));
    fflush(stdout);

    char *line = read_line();
    if (strncmp(line, "ports", 5)) {
        fprintf(stderr, "rtpgen: expected 'ports ...'\n");
        return 2;
    }
    char *p = line + 5;
    for (int i = 0; i < opt.streams; i++) {
        char *end;
        long port = strtol(p, &end, 10);
        if (end == p || port < 1 || port > 65535) {
            fprintf(stderr, "rtpgen: 'ports' needs %d ports\n", opt.streams);
            return 2;
        }
        p = end;
        dest[i].sin_family = AF_INET;
        dest[i].sin_port = htons((uint16_t)port);
        dest[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }

    /* Warm-up: the normal schedule, so every leg gets packets past its learning window. */
    run_t warm = paced(1, warm_rounds);
    drain_quiet();
    printf("{\"event\": \"warm\", \"sent\": %llu, \"received\": %llu, \"seconds\": %.3f, "
           "\"late_max_ms\": %.3f}\n",
           (unsigned long long)warm.sent, (unsigned long long)arrivals,
           (double)(warm.end - warm.start) / 1e9, (double)warm.late_max / 1e6);
    fflush(stdout);

    line = read_line();
    if (strcmp(line, "go")) {
        fprintf(stderr, "rtpgen: expected 'go'\n");
        return 2;
    }
    first_measured = 1 + warm_rounds;
    double cpu0 = cpu_seconds();
    run_t run = paced(first_measured, rounds);
    double cpu = cpu_seconds() - cpu0;
    printf("{\"event\": \"sent\"}\n");
    fflush(stdout);
    drain_quiet();
    printf("{\"event\": \"done\", \"sent\": %llu, \"send_errors\": %llu, \"received\": %llu, "
           "\"stray\": %llu, \"late_warmup\": %llu, "
           "\"transit_p50_us\": %.0f, \"transit_p99_us\": %.0f, \"transit_max_us\": %lld, "
           "\"jitter_p50_us\": %.0f, \"jitter_p99_us\": %.0f, \"jitter_max_us\": %lld, "
           "\"jitter_pairs\": %llu, \"cpu_s\": %.4f, \"wall_s\": %.4f, \"late_max_ms\": %.3f, "
           "\"late_p50_ms\": %.3f, \"late_p99_ms\": %.3f, \"rt\": %d}\n",
           (unsigned long long)run.sent, (unsigned long long)run.send_errors,
           (unsigned long long)received, (unsigned long long)stray,
           (unsigned long long)late_warm, hist_percentile(&transit, 0.5),
           hist_percentile(&transit, 0.99), (long long)transit.max,
           hist_percentile(&jitter, 0.5), hist_percentile(&jitter, 0.99), (long long)jitter.max,
           (unsigned long long)jitter.count, cpu, (double)(run.end - run.start) / 1e9,
           (double)run.late_max / 1e6, hist_percentile(&lateness, 0.5) / 1e3,
           hist_percentile(&lateness, 0.99) / 1e3, opt.rt);
    fflush(stdout);
    return 0;
}
