/*
 * floor.h: the pieces every ipcbench floor program shares.
 *
 * A floor program does the least a mechanism needs to move messages between
 * two processes, so that ipcbench's Go transports can be held against it.
 * Each program forks: the parent drives and times, the child answers.
 * It prints exactly one line that starts with "RESULT <mode>" followed by
 * key=value fields, and exits 0; on any error it prints one line to stderr
 * and exits 1 (2 for a bad command line). A peer that died is such an
 * error: SIGPIPE is ignored, so writing to it fails with EPIPE.
 */
#ifndef IPCBENCH_FLOOR_H
#define IPCBENCH_FLOOR_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_UNUSED __attribute__((unused))

/* fail prints "floor: <what>[: <errno text>]" and exits 1. */
FLOOR_UNUSED static void fail(const char *fmt, ...) {
	int saved = errno;
	va_list ap;
	fputs("floor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (saved != 0)
		fprintf(stderr, ": %s", strerror(saved));
	fputc('\n', stderr);
	exit(1);
}

/* usage prints a command-line mistake and the synopsis, and exits 2. */
FLOOR_UNUSED static void usage(const char *synopsis, const char *fmt, ...) {
	va_list ap;
	fputs("floor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", synopsis);
	exit(2);
}

/* number parses a whole number >= min from a flag's argument. */
FLOOR_UNUSED static long long number(const char *synopsis, char flag, const char *s, long long min) {
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min)
		usage(synopsis, "-%c %s: want a whole number >= %lld", flag, s, min);
	return v;
}

/* A command-line flag: -name VALUE, a whole number >= min, or a switch. */
struct flag {
	char name;
	long long min;
	long long *value; /* where the number goes; a switch sets it to 1 */
	int is_switch;    /* takes no value */
};

/* parse_flags parses argv[2..] (argv[1] is the mode) against flags; any
 * mistake is a usage error. */
FLOOR_UNUSED static void parse_flags(int argc, char **argv, const char *synopsis, const struct flag *flags, int nflags) {
	char spec[64];
	size_t k = 0;
	for (int i = 0; i < nflags && k + 2 < sizeof spec; i++) {
		spec[k++] = flags[i].name;
		if (!flags[i].is_switch)
			spec[k++] = ':';
	}
	spec[k] = '\0';
	opterr = 0;
	optind = 2;
	int c;
	while ((c = getopt(argc, argv, spec)) != -1) {
		const struct flag *f = NULL;
		for (int i = 0; i < nflags; i++)
			if (flags[i].name == c)
				f = &flags[i];
		if (f == NULL)
			usage(synopsis, "unknown flag or missing value: -%c", optopt);
		*f->value = f->is_switch ? 1 : number(synopsis, f->name, optarg, f->min);
	}
	if (optind != argc)
		usage(synopsis, "unexpected argument %s", argv[optind]);
}

/* clock_ns reads the monotonic clock. */
static inline uint64_t clock_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* relax tells the CPU this thread is busy-waiting. */
static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* SPIN_YIELD_EVERY is how many polls a busy-waiting side makes between
 * sched_yield calls, as ipcbench's spinning waits do: two spinners that
 * share one CPU then hand it over instead of burning time slices. */
#define SPIN_YIELD_EVERY 4096

/* spin_pause is one poll's pause of a busy-wait; every SPIN_YIELD_EVERY
 * polls it yields the CPU. */
static inline void spin_pause(unsigned poll) {
	if (poll % SPIN_YIELD_EVERY == 0)
		sched_yield();
	else
		relax();
}

/* run_on pins the calling process to one CPU; a negative cpu leaves it to
 * the scheduler. */
FLOOR_UNUSED static void run_on(int cpu) {
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		fail("pinning to CPU %d", cpu);
}

/* send_all writes n bytes, however many calls it takes. */
FLOOR_UNUSED static void send_all(int fd, const void *p, size_t n) {
	const char *b = p;
	while (n > 0) {
		ssize_t k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			fail("write");
		b += k;
		n -= (size_t)k;
	}
}

/* recv_all reads exactly n bytes; it returns 0 at a clean end of file
 * before the first byte, 1 when all n arrived, and fails otherwise. */
FLOOR_UNUSED static int recv_all(int fd, void *p, size_t n) {
	char *b = p;
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, b + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			fail("read");
		if (k == 0) {
			if (got == 0)
				return 0;
			errno = 0;
			fail("end of file after %zu of %zu bytes", got, n);
		}
		got += (size_t)k;
	}
	return 1;
}

/* futex_wait sleeps while *word == expect, for at most a tenth of a
 * second; it returns 1 when that time ran out (the caller then looks
 * whether the other process still lives, see peer_gone) and 0 otherwise.
 * futex_wake wakes one sleeper. */
#define FUTEX_WAIT_NS 100000000
FLOOR_UNUSED static int futex_wait(_Atomic uint32_t *word, uint32_t expect) {
	struct timespec ts = {0, FUTEX_WAIT_NS};
	return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expect, &ts, NULL, 0) != 0 && errno == ETIMEDOUT;
}
FLOOR_UNUSED static void futex_wake(_Atomic uint32_t *word) {
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* shared_region maps n zeroed bytes that parent and child share after fork. */
FLOOR_UNUSED static void *shared_region(size_t n) {
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fail("mapping %zu shared bytes", n);
	return p;
}

/* A TCP listener on 127.0.0.1, on a port the kernel picks. */
FLOOR_UNUSED static int tcp_listener(int backlog, struct sockaddr_in *where) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail("socket");
	memset(where, 0, sizeof *where);
	where->sin_family = AF_INET;
	where->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof *where;
	if (bind(fd, (struct sockaddr *)where, len) != 0 || listen(fd, backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *)where, &len) != 0)
		fail("listening on 127.0.0.1");
	return fd;
}

/* no_delay turns Nagle's algorithm off, as ipcbench's tcp transports do. */
FLOOR_UNUSED static void no_delay(int fd) {
	int on = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0)
		fail("TCP_NODELAY");
}

FLOOR_UNUSED static int tcp_dial(const struct sockaddr_in *where) {
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)where, sizeof *where) != 0)
		fail("connecting to 127.0.0.1:%d", ntohs(where->sin_port));
	no_delay(fd);
	return fd;
}

FLOOR_UNUSED static int tcp_accept(int listener) {
	int fd;
	while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (fd < 0)
		fail("accept");
	no_delay(fd);
	return fd;
}

/*
 * A duplex byte channel between parent and child, for the descriptor-based
 * mechanisms: a pair of pipes, a Unix stream socketpair, or a TCP connection
 * over loopback. Open it before fork; then each side calls link_end.
 */
enum mech { MECH_PIPE, MECH_UNIX, MECH_TCP };

struct link {
	enum mech mech;
	int down[2], up[2]; /* pipes: parent->child, child->parent */
	int pair[2];        /* unix */
	int listener;       /* tcp */
	struct sockaddr_in where;
};

/* An end of a link: read from rd, write to wr (the same socket, or two pipes). */
struct end {
	int rd, wr;
};

FLOOR_UNUSED static int mech_parse(const char *s, enum mech *m) {
	if (strcmp(s, "pipe") == 0)
		*m = MECH_PIPE;
	else if (strcmp(s, "unix") == 0)
		*m = MECH_UNIX;
	else if (strcmp(s, "tcp") == 0)
		*m = MECH_TCP;
	else
		return 0;
	return 1;
}

FLOOR_UNUSED static void link_open(struct link *l, enum mech m, int backlog) {
	memset(l, 0, sizeof *l);
	l->mech = m;
	l->listener = -1;
	switch (m) {
	case MECH_PIPE:
		if (pipe2(l->down, O_CLOEXEC) != 0 || pipe2(l->up, O_CLOEXEC) != 0)
			fail("pipe");
		break;
	case MECH_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l->pair) != 0)
			fail("socketpair");
		break;
	case MECH_TCP:
		l->listener = tcp_listener(backlog, &l->where);
		break;
	}
}

/* link_end returns this side's end and closes what belongs to the other. */
FLOOR_UNUSED static struct end link_end(struct link *l, int child) {
	struct end e = {-1, -1};
	switch (l->mech) {
	case MECH_PIPE:
		if (child) {
			e.rd = l->down[0], e.wr = l->up[1];
			close(l->down[1]), close(l->up[0]);
		} else {
			e.rd = l->up[0], e.wr = l->down[1];
			close(l->up[1]), close(l->down[0]);
		}
		break;
	case MECH_UNIX:
		e.rd = e.wr = l->pair[child ? 1 : 0];
		close(l->pair[child ? 0 : 1]);
		break;
	case MECH_TCP:
		e.rd = e.wr = child ? tcp_accept(l->listener) : tcp_dial(&l->where);
		break;
	}
	return e;
}

FLOOR_UNUSED static void end_close(struct end e) {
	close(e.rd);
	if (e.wr != e.rd)
		close(e.wr);
}

/*
 * The other process. A side that waits in shared memory sees no end of file
 * when its peer dies, so it looks now and then (after PEER_CHECK_POLLS
 * polls of a busy-wait, after each futex_wait that ran out of time) whether
 * the peer still lives, and fails naming it when not. The parent looks with
 * waitpid(WNOHANG), keeping the status for reap; the child compares its
 * parent with the one that forked it (and dies with it anyway: it is
 * forked with PR_SET_PDEATHSIG).
 */
#define PEER_CHECK_POLLS (1u << 16)
static pid_t peer_pid;         /* the child in the parent, the parent in the child */
static int peer_is_child;      /* peer_pid is this process's child */
static int peer_reaped;        /* the parent has already reaped the child */
static int peer_status;        /* its status then */
static const char *child_role = "the child"; /* what the child does, for messages */

/* peer_gone reports whether the other process has ended. */
FLOOR_UNUSED static int peer_gone(void) {
	if (peer_pid <= 0)
		return 0;
	if (!peer_is_child)
		return getppid() != peer_pid;
	if (peer_reaped)
		return 1;
	int status;
	pid_t r = waitpid(peer_pid, &status, WNOHANG);
	if (r == peer_pid) {
		peer_reaped = 1, peer_status = status;
		return 1;
	}
	return r < 0 && errno != EINTR;
}

/* describe_status puts "exited with status N" or "was killed by signal N"
 * into buf. */
static const char *describe_status(char *buf, size_t n, int status) {
	if (WIFEXITED(status))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "ended with status %#x", (unsigned)status);
	return buf;
}

/* peer_failed fails saying that the other process ended while this one
 * waited for it; call it when peer_gone said so and the awaited change
 * has not come after all. */
FLOOR_UNUSED static void peer_failed(const char *waiting_for) {
	char how[80];
	errno = 0;
	if (!peer_is_child)
		fail("the parent process ended while %s waited for %s", child_role, waiting_for);
	if (peer_reaped)
		fail("%s (child process %d) %s while the parent waited for %s", child_role, (int)peer_pid,
		     describe_status(how, sizeof how, peer_status), waiting_for);
	fail("%s (child process %d) ended while the parent waited for %s", child_role, (int)peer_pid, waiting_for);
}

/* reap waits for the child and fails unless it exited 0. */
FLOOR_UNUSED static void reap(pid_t pid) {
	int status = peer_status;
	if (!(peer_reaped && pid == peer_pid)) {
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				fail("waiting for the child");
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char how[80];
		errno = 0;
		fail("%s (child process %d) %s", child_role, (int)pid, describe_status(how, sizeof how, status));
	}
}

/* start_child forks; the child runs fn(arg) and exits with its result. The
 * child dies with the parent (PR_SET_PDEATHSIG), and gives up at once if
 * the parent died before that was armed. */
FLOOR_UNUSED static pid_t start_child(int (*fn)(void *), void *arg) {
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
			fail("PR_SET_PDEATHSIG");
		if (getppid() != parent)
			_exit(1);
		peer_pid = parent, peer_is_child = 0;
		_exit(fn(arg));
	}
	peer_pid = pid, peer_is_child = 1;
	return pid;
}

/* ignore_sigpipe makes a write to a closed pipe or socket fail with EPIPE,
 * which fail reports ("floor: write: Broken pipe"), instead of killing the
 * process silently. Every main calls it first. */
FLOOR_UNUSED static void ignore_sigpipe(void) {
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fail("ignoring SIGPIPE");
}

/* Latency summary: durations in ns, summarised by nearest-rank percentiles. */
static int cmp_ns(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

FLOOR_UNUSED static uint64_t rank_ns(const uint64_t *sorted, size_t n, double q) {
	size_t i = (size_t)(q * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return sorted[i - 1];
}

/* print_latency sorts ns[0..n) and appends the percentile fields to the
 * current line. */
FLOOR_UNUSED static void print_latency(uint64_t *ns, size_t n) {
	qsort(ns, n, sizeof ns[0], cmp_ns);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)ns[i];
	printf(" mean_ns=%.1f p50_ns=%llu p90_ns=%llu p99_ns=%llu p999_ns=%llu min_ns=%llu max_ns=%llu",
	       sum / (double)n, (unsigned long long)rank_ns(ns, n, 0.5), (unsigned long long)rank_ns(ns, n, 0.9),
	       (unsigned long long)rank_ns(ns, n, 0.99), (unsigned long long)rank_ns(ns, n, 0.999),
	       (unsigned long long)ns[0], (unsigned long long)ns[n - 1]);
}

/*
 * Payloads, laid out as ipcbench's Go side writes and checks them: a
 * 24-byte stamp, the connection (8 hex digits) and the sequence number (16
 * hex digits) in lowercase ASCII, most significant digit first, then at
 * every offset i >= 24 the pattern byte (i % 251 + 11) & 0xff. A sender
 * fills a buffer once and stamps each message; a receiver checks every
 * byte. Messages are at least STAMP_LEN bytes, so each carries its whole
 * stamp.
 */
#define STAMP_LEN 24
#define PATTERN_PERIOD 251
#define PATTERN_LEN (PATTERN_PERIOD * 256) /* pattern[i % PATTERN_LEN] is offset i's byte */

static unsigned char pattern[PATTERN_LEN];

static const unsigned char *pattern_bytes(void) {
	if (pattern[0] == 0) /* the first byte is 11 once made */
		for (size_t i = 0; i < PATTERN_LEN; i++)
			pattern[i] = (unsigned char)(i % PATTERN_PERIOD + 11);
	return pattern;
}

static void encode_stamp(unsigned char s[STAMP_LEN], uint32_t conn, uint64_t seq) {
	static const char hex[] = "0123456789abcdef";
	for (int i = 7; i >= 0; i--, conn >>= 4)
		s[i] = (unsigned char)hex[conn & 15];
	for (int i = STAMP_LEN - 1; i >= 8; i--, seq >>= 4)
		s[i] = (unsigned char)hex[seq & 15];
}

/* stamp writes the stamp of (conn, seq) at the front of msg. */
FLOOR_UNUSED static void stamp(char *msg, uint32_t conn, uint64_t seq) {
	unsigned char s[STAMP_LEN];
	encode_stamp(s, conn, seq);
	memcpy(msg, s, STAMP_LEN);
}

/* fill stamps msg[0..n) with (conn, seq) and puts the pattern after it. */
FLOOR_UNUSED static void fill(char *msg, size_t n, uint32_t conn, uint64_t seq) {
	const unsigned char *p = pattern_bytes();
	stamp(msg, conn, seq);
	for (size_t off = STAMP_LEN; off < n;) {
		size_t at = off % PATTERN_LEN, k = PATTERN_LEN - at < n - off ? PATTERN_LEN - at : n - off;
		memcpy(msg + off, p + at, k);
		off += k;
	}
}

/* check_part checks part[0..n), the bytes at offsets [off, off+n) of the
 * payload of (conn, seq), and fails naming the first byte that differs;
 * a payload checked in pieces, however split, passes exactly when it is
 * whole and right. what names the message in the failure. */
FLOOR_UNUSED static void check_part(const char *part, size_t n, uint32_t conn, uint64_t seq, size_t off, const char *what) {
	const unsigned char *b = (const unsigned char *)part, *p = pattern_bytes();
	while (n > 0) {
		unsigned char want[STAMP_LEN];
		const unsigned char *w;
		size_t k;
		if (off < STAMP_LEN) {
			encode_stamp(want, conn, seq);
			w = want + off, k = STAMP_LEN - off;
		} else {
			size_t at = off % PATTERN_LEN;
			w = p + at, k = PATTERN_LEN - at;
		}
		if (k > n)
			k = n;
		if (memcmp(b, w, k) != 0) {
			size_t i = 0;
			while (b[i] == w[i])
				i++;
			errno = 0;
			fail("%s (connection %u, sequence %llu): byte at offset %zu is %#04x, want %#04x", what, conn,
			     (unsigned long long)seq, off + i, b[i], w[i]);
		}
		b += k, n -= k, off += k;
	}
}

/* check checks a whole payload of n bytes. */
FLOOR_UNUSED static void check(const char *msg, size_t n, uint32_t conn, uint64_t seq, const char *what) {
	check_part(msg, n, conn, seq, 0, what);
}

#endif
