/*
 * echo_uring: single-threaded liburing TCP echo server, the io_uring baseline
 * for ringo's echo benchmarks.
 *
 * - One multishot accept on the listener.
 * - One multishot recv per connection, selecting buffers from a provided
 *   buffer ring (group BGID).
 * - Each received buffer is sent back as is. The buffer stays owned by the
 *   connection until its send CQE, then goes back to the buffer ring.
 *   Sends on a connection are queued and issued one at a time, so the byte
 *   order is kept even if a send has to wait for socket space.
 * - A recv CQE without IORING_CQE_F_MORE (including -ENOBUFS, when the buffer
 *   ring ran dry) re-arms the multishot recv, unless it was EOF or an error.
 * - One io_uring_submit_and_wait(ring, 1) per loop iteration; all ready CQEs
 *   are then reaped and the returned buffers published in one ring advance.
 *
 * Ring flags: IORING_SETUP_COOP_TASKRUN by default;
 * -D uses IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN instead.
 *
 * Usage: echo_uring [-a ADDR] [-p PORT] [-D]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SQ_ENTRIES 4096
#define CQ_ENTRIES 16384
#define BUF_COUNT 4096 /* provided buffers; power of two */
#define BUF_SIZE 4096
#define BGID 0

/* user_data layout: type in bits 60..63, the rest depends on the type. */
enum { UD_ACCEPT = 1, UD_RECV = 2, UD_SEND = 3 };
#define UD(type, hi, lo) \
	(((uint64_t)(type) << 60) | ((uint64_t)(hi) << 32) | (uint32_t)(lo))
#define UD_TYPE(ud) ((unsigned)((ud) >> 60))
#define UD_HI(ud) ((uint32_t)(((ud) >> 32) & 0x0fffffffu))
#define UD_LO(ud) ((uint32_t)(ud))

/* A received buffer waiting to be (or being) sent back. */
struct buf_state {
	int fd;
	uint32_t gen; /* connection generation the data belongs to */
	uint32_t len; /* bytes received */
	uint32_t off; /* bytes already sent */
	int next;     /* next buffer in the connection's send queue, or -1 */
};

struct conn {
	uint32_t gen;  /* bumped on close so stale CQEs can be recognised */
	int open;
	int closing;   /* send failed: shut down, waiting for the recv to end */
	int sending;   /* the head of the queue has a send in flight */
	int head, tail; /* send queue of buffer ids */
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *buf_base;
static struct buf_state bufs[BUF_COUNT];
static int buf_returns; /* buffers added to the ring since the last advance */
static struct conn *conns;
static size_t nconns;

static void die(const char *what, int err)
{
	fprintf(stderr, "echo_uring: %s: %s\n", what, strerror(err));
	exit(1);
}

static char *buf_addr(int bid)
{
	return buf_base + (size_t)bid * BUF_SIZE;
}

/* Give a buffer back to the kernel; published by the advance in the loop. */
static void buf_release(int bid)
{
	io_uring_buf_ring_add(br, buf_addr(bid), BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(BUF_COUNT), buf_returns++);
}

static struct io_uring_sqe *get_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		/* SQ full: push what we have to the kernel and retry. */
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
		if (!sqe)
			die("io_uring_get_sqe", EBUSY);
	}
	return sqe;
}

static struct conn *conn_get(int fd)
{
	if ((size_t)fd >= nconns) {
		size_t n = nconns ? nconns : 1024;

		while (n <= (size_t)fd)
			n *= 2;
		conns = realloc(conns, n * sizeof(*conns));
		if (!conns)
			die("realloc", ENOMEM);
		memset(conns + nconns, 0, (n - nconns) * sizeof(*conns));
		nconns = n;
	}
	return &conns[fd];
}

static void arm_accept(int lfd)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, UD(UD_ACCEPT, 0, lfd));
}

static void arm_recv(int fd, struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, UD(UD_RECV, c->gen & 0x0fffffffu, fd));
}

static void submit_send(int bid)
{
	struct buf_state *b = &bufs[bid];
	struct io_uring_sqe *sqe = get_sqe();

	/* MSG_WAITALL: the kernel retries short sends on stream sockets. */
	io_uring_prep_send(sqe, b->fd, buf_addr(bid) + b->off, b->len - b->off,
			   MSG_NOSIGNAL | MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, UD(UD_SEND, 0, bid));
}

/* Queue a received buffer for sending back; start a send if none is running. */
static void queue_send(int fd, struct conn *c, int bid, uint32_t len)
{
	struct buf_state *b = &bufs[bid];

	b->fd = fd;
	b->gen = c->gen;
	b->len = len;
	b->off = 0;
	b->next = -1;
	if (c->head < 0)
		c->head = bid;
	else
		bufs[c->tail].next = bid;
	c->tail = bid;
	if (!c->sending) {
		c->sending = 1;
		submit_send(c->head);
	}
}

/*
 * Close after the multishot recv has ended. Queued buffers go back to the
 * ring; one with a send still in flight is returned by that send's CQE.
 */
static void conn_close(int fd, struct conn *c)
{
	int bid = c->head;

	if (bid >= 0 && c->sending)
		bid = bufs[bid].next;
	while (bid >= 0) {
		int next = bufs[bid].next;

		buf_release(bid);
		bid = next;
	}
	c->gen++;
	c->open = c->closing = c->sending = 0;
	c->head = c->tail = -1;
	close(fd);
}

static void on_accept(int lfd, struct io_uring_cqe *cqe)
{
	if (cqe->res >= 0) {
		int fd = cqe->res, one = 1;
		struct conn *c = conn_get(fd);

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->open = 1;
		c->closing = c->sending = 0;
		c->head = c->tail = -1;
		arm_recv(fd, c);
	} else if (cqe->res != -EINTR && cqe->res != -ECONNABORTED) {
		fprintf(stderr, "echo_uring: accept: %s\n", strerror(-cqe->res));
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept(lfd);
}

static void on_recv(struct io_uring_cqe *cqe)
{
	int fd = (int)UD_LO(cqe->user_data);
	struct conn *c = conn_get(fd);
	int has_buf = cqe->flags & IORING_CQE_F_BUFFER;
	int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

	if (!c->open || UD_HI(cqe->user_data) != (c->gen & 0x0fffffffu)) {
		/* Stale completion from a closed connection. */
		if (has_buf)
			buf_release(bid);
		return;
	}
	if (cqe->res > 0 && has_buf) {
		if (c->closing)
			buf_release(bid);
		else
			queue_send(fd, c, bid, (uint32_t)cqe->res);
		if (!(cqe->flags & IORING_CQE_F_MORE))
			arm_recv(fd, c);
		return;
	}
	if (has_buf)
		buf_release(bid);
	if (cqe->res == -ENOBUFS && !c->closing) {
		/* Buffer ring ran dry; buffers come back as sends complete. */
		arm_recv(fd, c);
		return;
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		return; /* should not happen: errors end a multishot recv */
	conn_close(fd, c); /* EOF or error */
}

static void on_send(struct io_uring_cqe *cqe)
{
	int bid = (int)UD_LO(cqe->user_data);
	struct buf_state *b = &bufs[bid];
	struct conn *c = conn_get(b->fd);

	if (!c->open || c->gen != b->gen) {
		/* The connection closed while this send was in flight. */
		buf_release(bid);
		return;
	}
	if (cqe->res > 0 && b->off + (uint32_t)cqe->res < b->len) {
		b->off += (uint32_t)cqe->res; /* short send: send the rest */
		submit_send(bid);
		return;
	}
	c->head = b->next;
	if (c->head < 0)
		c->tail = -1;
	c->sending = 0;
	buf_release(bid);
	if (cqe->res < 0) {
		/*
		 * Peer gone. Shut the socket down so the multishot recv ends;
		 * its final CQE closes the connection.
		 */
		c->closing = 1;
		shutdown(b->fd, SHUT_RDWR);
		return;
	}
	if (c->head >= 0) {
		c->sending = 1;
		submit_send(c->head);
	}
}

static void setup_buffers(void)
{
	int i, ret;

	if (posix_memalign((void **)&buf_base, 4096, (size_t)BUF_COUNT * BUF_SIZE))
		die("posix_memalign", ENOMEM);
#if defined(IO_URING_VERSION_MAJOR) && \
	(IO_URING_VERSION_MAJOR > 2 || IO_URING_VERSION_MINOR >= 4)
	/* liburing >= 2.4: allocate and register the ring in one call. */
	br = io_uring_setup_buf_ring(&ring, BUF_COUNT, BGID, 0, &ret);
	if (!br)
		die("io_uring_setup_buf_ring", -ret);
#else
	/* liburing 2.3: map the ring ourselves and register it. */
	{
		struct io_uring_buf_reg reg;
		size_t sz = BUF_COUNT * sizeof(struct io_uring_buf);

		br = mmap(NULL, sz, PROT_READ | PROT_WRITE,
			  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
		if (br == MAP_FAILED)
			die("mmap", errno);
		io_uring_buf_ring_init(br);
		memset(&reg, 0, sizeof(reg));
		reg.ring_addr = (uint64_t)(uintptr_t)br;
		reg.ring_entries = BUF_COUNT;
		reg.bgid = BGID;
		ret = io_uring_register_buf_ring(&ring, &reg, 0);
		if (ret < 0)
			die("io_uring_register_buf_ring", -ret);
	}
#endif
	for (i = 0; i < BUF_COUNT; i++)
		buf_release(i);
	io_uring_buf_ring_advance(br, buf_returns);
	buf_returns = 0;
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket", errno);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "echo_uring: bad address %s\n", addr);
		exit(2);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind", errno);
	if (listen(fd, 4096) < 0)
		die("listen", errno);
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
	int port = 9000, defer = 0, opt, lfd, ret;
	struct io_uring_params p;

	while ((opt = getopt(argc, argv, "a:p:D")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'D':
			defer = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-a ADDR] [-p PORT] [-D]\n", argv[0]);
			return 2;
		}
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	lfd = listen_on(addr, port);

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = CQ_ENTRIES;
	if (defer)
		p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	else
		p.flags |= IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
	if (ret < 0)
		die("io_uring_queue_init_params", -ret);

	setup_buffers();
	arm_accept(lfd);
	fprintf(stderr, "echo_uring: listening on %s:%d (%s)\n", addr, port,
		defer ? "SINGLE_ISSUER|DEFER_TASKRUN" : "COOP_TASKRUN");

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, count = 0;

		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			die("io_uring_submit_and_wait", -ret);

		io_uring_for_each_cqe(&ring, head, cqe) {
			switch (UD_TYPE(cqe->user_data)) {
			case UD_ACCEPT:
				on_accept((int)UD_LO(cqe->user_data), cqe);
				break;
			case UD_RECV:
				on_recv(cqe);
				break;
			case UD_SEND:
				on_send(cqe);
				break;
			}
			count++;
		}
		io_uring_cq_advance(&ring, count);
		/* Publish every buffer returned in this iteration at once. */
		if (buf_returns) {
			io_uring_buf_ring_advance(br, buf_returns);
			buf_returns = 0;
		}
	}
}
