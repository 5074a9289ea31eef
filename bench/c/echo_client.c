/*
 * echo_client: single-threaded epoll closed-loop load generator for echo
 * servers.
 *
 * Every connection sends one MSG_SIZE message, waits for the whole echo,
 * checks it byte for byte, records the round-trip time and sends the next
 * message at once. Per message it costs one send, usually one recv and one
 * clock read (the completion time of one message is the send time of the next).
 *
 * All connections are made before the clock starts (ECONNREFUSED is retried
 * for a few seconds, so the client can be started right after the server).
 * Messages completed during the WARMUP window are not counted; the measured
 * window is the DURATION seconds after it.
 *
 * Latencies go into a log-linear histogram (about 1.6% resolution, fixed
 * memory), from which p50 and p99 are read.
 *
 * Usage: echo_client [-a ADDR] [-p PORT] [-c CONNS] [-s MSG_SIZE]
 *                    [-d SECONDS] [-w WARMUP_SECONDS]
 *
 * Output (one line):
 *   echo_client conns=100 size=64 secs=3.0 msgs=NNN msgs_per_sec=NNN
 *   p50_us=X.X p99_us=X.X
 * Exits non-zero if an echo does not match what was sent, or a connection
 * fails.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 1024
#define MAX_MSG (1 << 20)

/* ---- log-linear histogram of nanoseconds ---- */

/*
 * Values below 128 get one bucket each. Above that, each power of two
 * [2^e, 2^(e+1)) is split into 64 equal sub-buckets.
 */
#define HIST_SUB 64
#define HIST_BUCKETS (128 + (64 - 7) * HIST_SUB)

static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count;

static unsigned hist_index(uint64_t v)
{
	unsigned e;

	if (v < 128)
		return (unsigned)v;
	e = 63 - (unsigned)__builtin_clzll(v);             /* e >= 7 */
	return 128 + (e - 7) * HIST_SUB + (unsigned)((v >> (e - 6)) - 64);
}

/* Midpoint of a bucket, in nanoseconds. */
static double hist_value(unsigned idx)
{
	unsigned k, e;
	uint64_t lo, width;

	if (idx < 128)
		return idx;
	k = idx - 128;
	e = k / HIST_SUB + 7;
	width = 1ULL << (e - 6);
	lo = (uint64_t)(64 + k % HIST_SUB) * width;
	return (double)lo + (double)width / 2.0;
}

static void hist_record(uint64_t v)
{
	hist[hist_index(v)]++;
	hist_count++;
}

static double hist_quantile(double q)
{
	uint64_t rank, seen = 0;
	unsigned i;

	if (hist_count == 0)
		return 0;
	rank = (uint64_t)(q * (double)hist_count);
	if (rank >= hist_count)
		rank = hist_count - 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen > rank)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---- connections ---- */

struct conn {
	int fd;
	uint32_t id;
	uint32_t seq;      /* message number, mixed into the payload */
	size_t sent;       /* bytes of the current message written */
	size_t got;        /* bytes of the echo received */
	int want_out;      /* EPOLLOUT subscribed (a write blocked) */
	uint64_t start_ns; /* when the current message was sent */
	unsigned char *tx; /* current message */
	unsigned char *rx; /* echo being received */
};

static struct conn *conns;
static int nconns = 100;
static size_t msg_size = 64;
static int epfd;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *msg, const struct conn *c)
{
	fprintf(stderr, "echo_client: conn %u: %s\n", c->id, msg);
	exit(1);
}

/* Payload depends on connection and message number, so crossed or stale
 * echoes are caught by the comparison. */
static void fill_message(struct conn *c)
{
	size_t i;
	uint32_t x = c->id * 2654435761u + c->seq * 40503u + 1;

	for (i = 0; i < msg_size; i++) {
		x = x * 1103515245u + 12345u;
		c->tx[i] = (unsigned char)(x >> 24);
	}
}

static void set_events(struct conn *c, unsigned events)
{
	struct epoll_event ev = { .events = events | EPOLLET, .data.ptr = c };

	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl(MOD)");
}

/* Write the rest of the current message; subscribe EPOLLOUT if it blocks. */
static void send_rest(struct conn *c)
{
	while (c->sent < msg_size) {
		ssize_t n = send(c->fd, c->tx + c->sent, msg_size - c->sent,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->want_out) {
					c->want_out = 1;
					set_events(c, EPOLLIN | EPOLLOUT);
				}
				return;
			}
			if (errno == EINTR)
				continue;
			fail(strerror(errno), c);
		}
		c->sent += (size_t)n;
	}
	if (c->want_out) {
		/* The blocked write finished: back to EPOLLIN only. */
		c->want_out = 0;
		set_events(c, EPOLLIN);
	}
}

static void start_message(struct conn *c, uint64_t now)
{
	c->seq++;
	fill_message(c);
	c->sent = 0;
	c->got = 0;
	c->start_ns = now;
	send_rest(c);
}

/*
 * Read the echo. Returns 1 when a whole message has arrived, 0 if more is
 * needed. Reads at most the bytes still expected: a closed-loop server sends
 * nothing else, so a full read leaves the socket empty.
 */
static int recv_echo(struct conn *c)
{
	while (c->got < msg_size) {
		ssize_t n = recv(c->fd, c->rx + c->got, msg_size - c->got, 0);

		if (n == 0)
			fail("connection closed by server", c);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			fail(strerror(errno), c);
		}
		c->got += (size_t)n;
	}
	return 1;
}

static int connect_one(const struct sockaddr_in *sa)
{
	uint64_t deadline = now_ns() + 5000000000ULL;

	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die("socket");
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return fd;
		if (errno != ECONNREFUSED || now_ns() > deadline)
			die("connect");
		close(fd);
		usleep(20000); /* server not listening yet */
	}
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			die("setrlimit(RLIMIT_NOFILE)");
	}
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 9000, opt, i;
	double secs = 3.0, warmup = 1.0;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event events[MAX_EVENTS];
	uint64_t t_start, t_measure, t_end, msgs = 0;
	unsigned char *mem;

	while ((opt = getopt(argc, argv, "a:p:c:s:d:w:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'c':
			nconns = atoi(optarg);
			break;
		case 's':
			msg_size = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			secs = strtod(optarg, NULL);
			break;
		case 'w':
			warmup = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-a ADDR] [-p PORT] [-c CONNS] [-s MSG_SIZE] "
				"[-d SECONDS] [-w WARMUP_SECONDS]\n",
				argv[0]);
			return 2;
		}
	}
	if (nconns < 1 || msg_size < 1 || msg_size > MAX_MSG || secs <= 0 ||
	    warmup < 0) {
		fprintf(stderr, "echo_client: bad -c/-s/-d/-w (size 1..%d)\n", MAX_MSG);
		return 2;
	}
	sa.sin_port = htons(port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "echo_client: bad address %s\n", addr);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	conns = calloc((size_t)nconns, sizeof(*conns));
	mem = malloc((size_t)nconns * msg_size * 2);
	if (!conns || !mem)
		die("malloc");

	/* Connect everything before any timing starts. */
	for (i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = c };
		int one = 1;

		c->id = (uint32_t)i;
		c->tx = mem + (size_t)i * msg_size * 2;
		c->rx = c->tx + msg_size;
		c->fd = connect_one(&sa);
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0)
			die("fcntl(O_NONBLOCK)");
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			die("epoll_ctl(ADD)");
	}

	t_start = now_ns();
	t_measure = t_start + (uint64_t)(warmup * 1e9);
	t_end = t_measure + (uint64_t)(secs * 1e9);
	for (i = 0; i < nconns; i++)
		start_message(&conns[i], t_start);

	for (;;) {
		uint64_t now = now_ns();
		int n, timeout_ms;

		if (now >= t_end)
			break;
		timeout_ms = (int)((t_end - now) / 1000000) + 1;
		n = epoll_wait(epfd, events, MAX_EVENTS, timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			unsigned e = events[i].events;

			if ((e & EPOLLOUT) && c->sent < msg_size)
				send_rest(c);
			if (e & EPOLLERR)
				fail("socket error", c);
			if (!(e & (EPOLLIN | EPOLLHUP)))
				continue;
			if (!recv_echo(c))
				continue;
			if (c->sent < msg_size)
				fail("echo arrived before the message was fully sent", c);
			if (memcmp(c->tx, c->rx, msg_size) != 0)
				fail("echo does not match the message sent", c);
			now = now_ns();
			if (now >= t_measure && now < t_end) {
				msgs++;
				hist_record(now - c->start_ns);
			}
			start_message(c, now);
		}
	}

	printf("echo_client conns=%d size=%zu secs=%.1f msgs=%llu msgs_per_sec=%.0f "
	       "p50_us=%.1f p99_us=%.1f\n",
	       nconns, msg_size, secs, (unsigned long long)msgs, (double)msgs / secs,
	       hist_quantile(0.50) / 1000.0, hist_quantile(0.99) / 1000.0);
	return 0;
}
