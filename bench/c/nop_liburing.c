/*
 * nop_liburing: NOP submit-and-reap benchmark against liburing.
 *
 * Each iteration gets BATCH SQEs, preps them as NOPs, calls
 * io_uring_submit_and_wait(ring, BATCH) (one io_uring_enter) and then reaps
 * every CQE with io_uring_peek_batch_cqe + io_uring_cq_advance, checking
 * that each completion has res == 0 and carries the user_data we gave it.
 *
 * Usage: nop_liburing [-b BATCH] [-n TOTAL_OPS] [-d SECONDS]
 *   -b BATCH    NOPs per submit_and_wait (default 32)
 *   -n OPS      measured operations (default 10,000,000)
 *   -d SECONDS  run for this long instead of a fixed operation count
 *
 * Output (one line):
 *   nop_liburing batch=32 ops=10000000 ns_per_op=XX.X ops_per_sec=NNNN
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_OPS 20000ULL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "nop_liburing: %s: %s\n", what, strerror(err));
	exit(1);
}

/*
 * One iteration: submit 'batch' NOPs tagged seq, seq+1, ... and reap exactly
 * that many completions. Returns the number of completions verified.
 */
static unsigned run_batch(struct io_uring *ring, unsigned batch, uint64_t seq,
			  struct io_uring_cqe **cqes)
{
	unsigned i, got = 0;
	int ret;

	for (i = 0; i < batch; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		if (!sqe) {
			fprintf(stderr, "nop_liburing: SQ ring full\n");
			exit(1);
		}
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, seq + i);
	}

	ret = io_uring_submit_and_wait(ring, batch);
	if (ret < 0)
		die("io_uring_submit_and_wait", -ret);
	if ((unsigned)ret != batch) {
		fprintf(stderr, "nop_liburing: submitted %d of %u\n", ret, batch);
		exit(1);
	}

	/* NOPs complete in order; check each one against the tag we gave it. */
	while (got < batch) {
		unsigned n = io_uring_peek_batch_cqe(ring, cqes, batch - got);

		if (n == 0) {
			/* Should not happen after submit_and_wait(batch); be safe. */
			struct io_uring_cqe *cqe;

			ret = io_uring_wait_cqe(ring, &cqe);
			if (ret < 0)
				die("io_uring_wait_cqe", -ret);
			continue;
		}
		for (i = 0; i < n; i++) {
			if (cqes[i]->res != 0) {
				fprintf(stderr, "nop_liburing: NOP failed: %s\n",
					strerror(-cqes[i]->res));
				exit(1);
			}
			if (cqes[i]->user_data != seq + got + i) {
				fprintf(stderr,
					"nop_liburing: completion %llu, expected %llu\n",
					(unsigned long long)cqes[i]->user_data,
					(unsigned long long)(seq + got + i));
				exit(1);
			}
		}
		io_uring_cq_advance(ring, n);
		got += n;
	}
	return got;
}

int main(int argc, char **argv)
{
	unsigned batch = 32, entries;
	uint64_t total = 10000000ULL, done = 0, seq = 0, t0, t1, deadline = 0;
	double secs = 0;
	struct io_uring ring;
	struct io_uring_cqe **cqes;
	int opt, ret;

	while ((opt = getopt(argc, argv, "b:n:d:")) != -1) {
		switch (opt) {
		case 'b':
			batch = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			total = strtoull(optarg, NULL, 10);
			break;
		case 'd':
			secs = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-b BATCH] [-n TOTAL_OPS] [-d SECONDS]\n",
				argv[0]);
			return 2;
		}
	}
	if (batch == 0 || batch > 32768 || (secs <= 0 && total == 0)) {
		fprintf(stderr, "nop_liburing: bad -b/-n/-d\n");
		return 2;
	}

	/* Ring of max(batch, 256) entries, default flags (no SQPOLL). */
	entries = batch > 256 ? batch : 256;
	ret = io_uring_queue_init(entries, &ring, 0);
	if (ret < 0)
		die("io_uring_queue_init", -ret);

	cqes = calloc(batch, sizeof(*cqes));
	if (!cqes)
		die("calloc", ENOMEM);

	/* Warm up the ring, page tables and caches outside the measurement. */
	while (seq < WARMUP_OPS)
		seq += run_batch(&ring, batch, seq, cqes);

	t0 = now_ns();
	if (secs > 0) {
		/* Time-bounded: read the clock about every 4096 ops. */
		unsigned check = batch >= 4096 ? 1 : 4096 / batch, k = 0;

		deadline = t0 + (uint64_t)(secs * 1e9);
		for (;;) {
			done += run_batch(&ring, batch, seq + done, cqes);
			if (++k == check) {
				k = 0;
				if (now_ns() >= deadline)
					break;
			}
		}
	} else {
		/* Count-bounded: round up to whole batches. */
		while (done < total)
			done += run_batch(&ring, batch, seq + done, cqes);
	}
	t1 = now_ns();

	printf("nop_liburing batch=%u ops=%llu ns_per_op=%.1f ops_per_sec=%.0f\n",
	       batch, (unsigned long long)done, (double)(t1 - t0) / (double)done,
	       (double)done * 1e9 / (double)(t1 - t0));

	free(cqes);
	io_uring_queue_exit(&ring);
	return 0;
}
