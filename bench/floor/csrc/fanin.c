/*
 * fanin: many connections between two processes, each a closed loop of
 * request and echo, served by one process.
 *
 * The child is an echo server: one process, one thread, every connection
 * non-blocking and watched by one epoll set; it sends back each message as
 * it arrives. The parent drives all connections from one thread the same
 * way: each connection has one message in flight. Neither side blocks on
 * a write: a message larger than the descriptor's buffer goes out as there
 * is room, connection by connection. When a connection's echo is
 * complete the parent checks every byte of it (the stamp with the
 * connection and sequence number, and the pattern after it, as ipcbench
 * checks an echo),
 * times the round trip and sends the next. It measures messages per second
 * over all connections and the round-trip distribution.
 */
#include "floor.h"
#include <sys/epoll.h>

static const char synopsis[] =
    "fanin MODE [-c connections] [-s bytes] [-n round-trips] [-w warm-up round-trips] [-a cpu -b cpu]\n"
    "  MODE pipe, unix, tcp; -n and -w count round trips over all connections";

struct setup {
	const char *mode;
	enum mech mech;
	int conns;
	size_t size;
	long n, warm;
	int cpu_parent, cpu_child;
	struct link *links;
};

/* One connection's state on either side. */
struct conn {
	struct end e;
	char *buf;
	size_t got;      /* bytes of the current message received */
	size_t out, put; /* bytes of buf to send (0: none) and how many went */
	int watch_out;   /* epoll waits for room to write on e.wr */
	int closed;      /* the connection is closed (server) */
	long left;       /* round trips still to start (driver) */
	uint64_t seq;    /* the sequence number in flight (driver) */
	uint64_t sent;   /* when it went out (driver) */
	int busy;        /* a message is in flight (driver) */
};

static void nonblocking(int fd) {
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		fail("O_NONBLOCK");
}

/* set_watch_out makes epoll wait for room to write on connection i's write
 * descriptor, or stop waiting for it: the socket's events change, a pipe's
 * write end joins or leaves the set. */
static void set_watch_out(int ep, struct conn *c, int i, int on) {
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = (uint32_t)i};
	int err;
	if (c->e.wr == c->e.rd) {
		err = epoll_ctl(ep, EPOLL_CTL_MOD, c->e.rd, &ev);
	} else {
		ev.events = EPOLLOUT;
		err = epoll_ctl(ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, c->e.wr, &ev);
	}
	if (err != 0)
		fail("epoll_ctl");
	c->watch_out = on;
}

/* flush writes what is left of the message going out on connection i
 * without blocking. It returns 1 when all of it went, and 0 when the
 * descriptor is full; epoll then reports connection i when there is room,
 * so one connection's full buffer never stops the others (a blocking
 * write could wait on a peer that itself waits to write to us). */
static int flush(int ep, struct conn *c, int i) {
	while (c->put < c->out) {
		ssize_t k = write(c->e.wr, c->buf + c->put, c->out - c->put);
		if (k > 0) {
			c->put += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			if (!c->watch_out)
				set_watch_out(ep, c, i, 1);
			return 0;
		}
		fail("write");
	}
	c->out = c->put = 0;
	if (c->watch_out)
		set_watch_out(ep, c, i, 0);
	return 1;
}

/* pull reads what is there of the current message; it returns -1 at end
 * of file, 1 when the message is complete and 0 when more is to come. */
static int pull(struct conn *c, size_t size) {
	for (;;) {
		ssize_t k = read(c->e.rd, c->buf + c->got, size - c->got);
		if (k > 0) {
			c->got += (size_t)k;
			if (c->got == size)
				return 1;
			continue;
		}
		if (k == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		fail("read");
	}
}

/* wait_events waits for readiness on the epoll set. */
static int wait_events(int ep, struct epoll_event *evs, int max) {
	for (;;) {
		int k = epoll_wait(ep, evs, max, -1);
		if (k >= 0)
			return k;
		if (errno != EINTR)
			fail("epoll_wait");
	}
}

static struct conn *open_conns(struct setup *s, int child, int ep) {
	struct conn *cs = calloc((size_t)s->conns, sizeof *cs);
	if (cs == NULL)
		fail("allocating %d connections", s->conns);
	for (int i = 0; i < s->conns; i++) {
		cs[i].e = link_end(&s->links[s->mech == MECH_TCP ? 0 : i], child);
		cs[i].buf = malloc(s->size);
		if (cs[i].buf == NULL)
			fail("allocating %zu bytes", s->size);
		nonblocking(cs[i].e.rd);
		if (cs[i].e.wr != cs[i].e.rd)
			nonblocking(cs[i].e.wr);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].e.rd, &ev) != 0)
			fail("epoll_ctl");
	}
	return cs;
}

/* serve echoes every connection until all have closed. */
static int serve(void *arg) {
	struct setup *s = arg;
	run_on(s->cpu_child);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		fail("epoll_create1");
	struct conn *cs = open_conns(s, 1, ep);
	int open = s->conns;
	struct epoll_event evs[64];
	while (open > 0) {
		int k = wait_events(ep, evs, 64);
		for (int j = 0; j < k; j++) {
			int i = (int)evs[j].data.u32;
			struct conn *c = &cs[i];
			if (c->closed || (c->out != 0 && !flush(ep, c, i)))
				continue;
			int r;
			while ((r = pull(c, s->size)) == 1) {
				c->got = 0, c->out = s->size, c->put = 0;
				if (!flush(ep, c, i))
					break;
			}
			if (r < 0) {
				if (c->got != 0) {
					errno = 0;
					fail("a connection closed inside a message");
				}
				epoll_ctl(ep, EPOLL_CTL_DEL, c->e.rd, NULL);
				if (c->watch_out && c->e.wr != c->e.rd)
					epoll_ctl(ep, EPOLL_CTL_DEL, c->e.wr, NULL);
				end_close(c->e);
				c->closed = 1;
				open--;
			}
		}
	}
	close(ep);
	return 0;
}

/* send_next puts connection i's next message in flight; what does not
 * fit goes out as there is room (flush). */
static void send_next(int ep, struct conn *c, int i, size_t size) {
	c->seq++; /* the connection's messages are numbered 1, 2, ... */
	stamp(c->buf, (uint32_t)i, c->seq);
	c->left--;
	c->busy = 1;
	c->got = 0;
	c->out = size, c->put = 0;
	c->sent = clock_ns();
	flush(ep, c, i);
}

/* drive runs total round trips spread over the connections (rounded up
 * per connection) and records their times in rtt when it is not NULL; it
 * returns how many round trips it made. */
static long drive(struct setup *s, struct conn *cs, int ep, long total, uint64_t *rtt) {
	long per = (total + s->conns - 1) / s->conns, done = 0;
	int active = 0;
	for (int i = 0; i < s->conns; i++) {
		cs[i].left = per;
		if (per > 0) {
			send_next(ep, &cs[i], i, s->size);
			active++;
		}
	}
	struct epoll_event evs[64];
	while (active > 0) {
		int k = wait_events(ep, evs, 64);
		for (int j = 0; j < k; j++) {
			int i = (int)evs[j].data.u32;
			struct conn *c = &cs[i];
			if (!c->busy || (c->out != 0 && !flush(ep, c, i)))
				continue;
			int r = pull(c, s->size);
			if (r < 0) {
				errno = 0;
				fail("the echo server closed connection %d", i);
			}
			if (r == 0)
				continue;
			uint64_t now = clock_ns();
			check(c->buf, s->size, (uint32_t)i, c->seq, "the echo");
			if (rtt != NULL)
				rtt[done] = now - c->sent;
			done++;
			c->busy = 0;
			if (c->left > 0)
				send_next(ep, c, i, s->size);
			else
				active--;
		}
	}
	return done;
}

static void parse(struct setup *s, int argc, char **argv) {
	if (argc < 2)
		usage(synopsis, "no mode given");
	s->mode = argv[1];
	if (!mech_parse(s->mode, &s->mech))
		usage(synopsis, "unknown mode %s", s->mode);
	long long conns = 4, size = 1024, n = 20000, warm = 2000, cpu_a = -1, cpu_b = -1;
	const struct flag flags[] = {
	    {'c', 1, &conns, 0}, {'s', STAMP_LEN, &size, 0}, {'n', 1, &n, 0}, {'w', 0, &warm, 0}, {'a', 0, &cpu_a, 0}, {'b', 0, &cpu_b, 0},
	};
	parse_flags(argc, argv, synopsis, flags, sizeof flags / sizeof flags[0]);
	if (conns > 4096)
		usage(synopsis, "-c %lld: at most 4096 connections", conns);
	if (size > 1 << 20)
		usage(synopsis, "-s %lld: at most 1 MiB", size);
	/* Rounding the round trips up per connection (and keeping their
	 * times) must not overflow a long or the memory's size; 2^40 is far
	 * more than a run makes. */
	long long most = (1ll << 40) - 1;
	if (most > LONG_MAX - 4096)
		most = LONG_MAX - 4096;
	if (most > (long long)(SIZE_MAX / sizeof(uint64_t)) - 4096)
		most = (long long)(SIZE_MAX / sizeof(uint64_t)) - 4096;
	if (n > most)
		usage(synopsis, "-n %lld: at most %lld round trips", n, most);
	if (warm > most)
		usage(synopsis, "-w %lld: at most %lld round trips", warm, most);
	s->conns = (int)conns, s->size = (size_t)size, s->n = (long)n, s->warm = (long)warm;
	s->cpu_parent = (int)cpu_a, s->cpu_child = (int)cpu_b;
}

int main(int argc, char **argv) {
	struct setup s;
	memset(&s, 0, sizeof s);
	ignore_sigpipe();
	child_role = "the echo server";
	parse(&s, argc, argv);
	int nlinks = s.mech == MECH_TCP ? 1 : s.conns; /* tcp: one listener, conns connections */
	s.links = calloc((size_t)nlinks, sizeof *s.links);
	if (s.links == NULL)
		fail("allocating links");
	for (int i = 0; i < nlinks; i++)
		link_open(&s.links[i], s.mech, s.conns);

	pid_t child = start_child(serve, &s);
	run_on(s.cpu_parent);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		fail("epoll_create1");
	struct conn *cs = open_conns(&s, 0, ep);
	for (int i = 0; i < s.conns; i++)
		fill(cs[i].buf, s.size, (uint32_t)i, 0);
	if (s.mech == MECH_TCP)
		close(s.links[0].listener);
	long per = (s.n + s.conns - 1) / s.conns;
	uint64_t *rtt = malloc(sizeof *rtt * (size_t)per * (size_t)s.conns);
	if (rtt == NULL)
		fail("allocating the round-trip times");
	long warm = drive(&s, cs, ep, s.warm, NULL);
	uint64_t t0 = clock_ns();
	long done = drive(&s, cs, ep, s.n, rtt);
	double secs = (double)(clock_ns() - t0) / 1e9;
	for (int i = 0; i < s.conns; i++)
		end_close(cs[i].e);
	close(ep);
	reap(child);
	printf("RESULT %s conns=%d size=%zu n=%ld warmup=%ld checked=%ld secs=%.6f msgs_per_s=%.0f", s.mode, s.conns, s.size, done,
	       warm, warm + done, secs, (double)done / secs);
	print_latency(rtt, (size_t)done);
	printf(" cpu_parent=%d cpu_child=%d\n", s.cpu_parent, s.cpu_child);
	return 0;
}
