/*
 * echo_epoll: single-threaded, edge-triggered, non-blocking epoll TCP echo
 * server. The baseline that ringo's echo benchmarks compare against.
 *
 * - The listener is edge-triggered; accept4(SOCK_NONBLOCK) runs until EAGAIN.
 * - Each connection is edge-triggered on EPOLLIN; on readiness it reads until
 *   EAGAIN and writes every chunk straight back.
 * - A short write stores the unsent tail in a per-connection pending buffer
 *   and subscribes EPOLLOUT. Reading stops until the pending bytes are out, so
 *   a client that does not read cannot make the server buffer without limit.
 * - EOF or an error closes the connection. TCP_NODELAY on accepted sockets.
 *
 * Usage: echo_epoll [-a ADDR] [-p PORT] [-r]
 *   -a ADDR  IPv4 address to listen on (default 127.0.0.1)
 *   -p PORT  TCP port (default 9000)
 *   -r       stop reading after a short read instead of reading to EAGAIN
 *            (the next edge reports new data; saves one read per message)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 1024
#define READ_BUF (64 * 1024)

struct conn {
	char *pend;	 /* unsent bytes (NULL when nothing is pending) */
	size_t pend_off; /* first unsent byte in pend */
	size_t pend_len; /* end of unsent bytes in pend */
	size_t pend_cap;
};

static struct conn *conns; /* indexed by fd */
static size_t nconns;
static int epfd;
static int short_read_stop;
static char rbuf[READ_BUF];

static void die(const char *what)
{
	fprintf(stderr, "echo_epoll: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct conn *conn_get(int fd)
{
	if ((size_t)fd >= nconns) {
		size_t n = nconns ? nconns : 1024;

		while (n <= (size_t)fd)
			n *= 2;
		conns = realloc(conns, n * sizeof(*conns));
		if (!conns)
			die("realloc");
		memset(conns + nconns, 0, (n - nconns) * sizeof(*conns));
		nconns = n;
	}
	return &conns[fd];
}

static void conn_close(int fd)
{
	struct conn *c = &conns[fd];

	free(c->pend);
	memset(c, 0, sizeof(*c));
	close(fd); /* also removes fd from the epoll set */
}

static void set_events(int fd, unsigned events)
{
	struct epoll_event ev = { .events = events | EPOLLET, .data.fd = fd };

	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		die("epoll_ctl(MOD)");
}

/* Keep 'len' bytes of 'data' to send once the socket is writable again. */
static void queue_pending(int fd, struct conn *c, const char *data, size_t len)
{
	size_t used = c->pend_len - c->pend_off;

	if (c->pend_off > 0 && used > 0)
		memmove(c->pend, c->pend + c->pend_off, used);
	c->pend_off = 0;
	c->pend_len = used;
	if (used + len > c->pend_cap) {
		size_t cap = c->pend_cap ? c->pend_cap : 4096;

		while (cap < used + len)
			cap *= 2;
		c->pend = realloc(c->pend, cap);
		if (!c->pend)
			die("realloc");
		c->pend_cap = cap;
	}
	memcpy(c->pend + c->pend_len, data, len);
	c->pend_len += len;
	if (used == 0)
		set_events(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
}

/*
 * Write as much of the pending buffer as the socket takes.
 * Returns 1 when drained, 0 when still blocked, -1 on error.
 */
static int flush_pending(int fd, struct conn *c)
{
	while (c->pend_off < c->pend_len) {
		ssize_t n = send(fd, c->pend + c->pend_off,
				 c->pend_len - c->pend_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->pend_off += (size_t)n;
	}
	c->pend_off = c->pend_len = 0;
	set_events(fd, EPOLLIN | EPOLLRDHUP);
	return 1;
}

/*
 * Read until EAGAIN (or, with -r and no hang-up seen, until a short read),
 * echoing each chunk. Returns -1 if the connection must be closed, 0 otherwise.
 */
static int handle_read(int fd, struct conn *c, int may_stop_short)
{
	for (;;) {
		ssize_t n = read(fd, rbuf, sizeof(rbuf));
		ssize_t w;

		if (n == 0)
			return -1; /* EOF */
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}

		w = send(fd, rbuf, (size_t)n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			w = 0;
		}
		if (w < n) {
			/* Socket full: park the rest, stop reading until EPOLLOUT. */
			queue_pending(fd, c, rbuf + w, (size_t)(n - w));
			return 0;
		}
		if (may_stop_short && (size_t)n < sizeof(rbuf))
			return 0;
	}
}

static void accept_all(int lfd)
{
	for (;;) {
		int one = 1;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* EMFILE and friends: report and wait for the next edge. */
			perror("echo_epoll: accept4");
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_get(fd);
		ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
		ev.data.fd = fd;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl(ADD)");
	}
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "echo_epoll: bad address %s\n", addr);
		exit(2);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	return fd;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	int port = 9000, opt, lfd;
	struct epoll_event ev, events[MAX_EVENTS];

	while ((opt = getopt(argc, argv, "a:p:r")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'r':
			short_read_stop = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-a ADDR] [-p PORT] [-r]\n", argv[0]);
			return 2;
		}
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	lfd = listen_on(addr, port);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	ev.events = EPOLLIN | EPOLLET;
	ev.data.fd = lfd;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl(listener)");
	fprintf(stderr, "echo_epoll: listening on %s:%d\n", addr, port);

	for (;;) {
		int i, n = epoll_wait(epfd, events, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			unsigned e = events[i].events;
			struct conn *c;

			if (fd == lfd) {
				accept_all(lfd);
				continue;
			}
			c = &conns[fd];
			if (e & EPOLLERR) {
				conn_close(fd);
				continue;
			}
			if (c->pend_len > c->pend_off) {
				int r = flush_pending(fd, c);

				if (r < 0) {
					conn_close(fd);
					continue;
				}
				if (r == 0)
					continue; /* still blocked on output */
				/* Drained: fall through and read what we left unread. */
			}
			/*
			 * Read on EPOLLIN/EPOLLHUP/EPOLLRDHUP, or after a drain (the
			 * input may have been left unread while output was blocked).
			 */
			if (handle_read(fd, c, short_read_stop &&
					!(e & (EPOLLHUP | EPOLLRDHUP))) < 0)
				conn_close(fd);
		}
	}
}
