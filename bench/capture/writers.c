/* writers: a multi-threaded process that keeps writing its pages, for capturing compaction.
 *
 *   writers THREADS MIB SECONDS
 *
 * Maps MIB MiB, touches every page, then returns every other page to the kernel
 * (MADV_DONTNEED) so that physical memory is fragmented and compaction has pages to move.
 * THREADS threads then write one byte to each remaining page of their own share of the
 * mapping in turn, for SECONDS seconds. A write to a page that is being migrated faults on the
 * migration entry (exceptions:page_fault_user) and sleeps until the page is remapped.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static char *base;
static size_t npages, nthreads;
static double seconds;
static const size_t PAGE = 4096;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *writer(void *arg)
{
	size_t id = (size_t)arg, lo = npages * id / nthreads, hi = npages * (id + 1) / nthreads;
	double end = now() + seconds;
	unsigned long rounds = 0;
	while (now() < end) {
		for (size_t p = lo | 1; p < hi; p += 2) /* the odd pages stay mapped */
			base[p * PAGE] = (char)rounds;
		rounds++;
	}
	fprintf(stderr, "writer %zu: %lu rounds over %zu pages\n", id, rounds, (hi - lo) / 2);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s THREADS MIB SECONDS\n", argv[0]);
		return 2;
	}
	nthreads = strtoul(argv[1], NULL, 10);
	npages = strtoul(argv[2], NULL, 10) * 256;
	seconds = atof(argv[3]);
	base = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || madvise(base, npages * PAGE, MADV_NOHUGEPAGE)) {
		perror("mmap");
		return 1;
	}
	for (size_t p = 0; p < npages; p++)
		base[p * PAGE] = 1;
	for (size_t p = 0; p < npages; p += 2)
		madvise(base + p * PAGE, PAGE, MADV_DONTNEED);
	pthread_t t[64];
	for (size_t i = 0; i < nthreads && i < 64; i++)
		pthread_create(&t[i], NULL, writer, (void *)i);
	for (size_t i = 0; i < nthreads && i < 64; i++)
		pthread_join(t[i], NULL);
	return 0;
}
