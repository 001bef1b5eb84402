/* A plain C loop of the replay's TLB model, the reference that bench/targets.py compares the
 * replay with.
 *
 * The model is the access path of tracereplay/kernel/_core.py without migrations: each CPU has an
 * L1 dTLB and an STLB, set-associative with LRU replacement; a page's set is its vpn mod the number
 * of sets; tags are page ids. An access looks up the L1 dTLB, then the STLB, then walks; an STLB
 * hit fills the L1 dTLB, a walk fills both. A fill takes the first empty way of the set, else the
 * least recently used one. Counted per CPU: L1 hits, STLB hits, walks, and remote accesses (the
 * page's node is not the CPU's node).
 *
 * Build and run (bench/targets.py does both; nothing compiled is kept in git):
 *     gcc -O2 -march=native -o tlb_loop bench/tlb_loop.c
 *     ./tlb_loop INPUT
 *
 * INPUT (little-endian, written by bench/targets.py from the trace's access rows in file order,
 * page ids as the replay's pre-pass numbers them):
 *     char    magic[8]            "TLBLOOP1"
 *     int64   accesses, pages
 *     int32   cpus, l1_entries, l1_ways, l2_entries, l2_ways, unused
 *     int32   cpu_node[cpus]
 *     int64   page_vpn[pages]     virtual page number (its sets)
 *     int32   page_node[pages]    node the page lives on
 *     int32   access_cpu[accesses]
 *     int32   access_page[accesses]
 *
 * Output: one JSON object on stdout: the per-CPU counters, loop_s, the wall time of the loop alone
 * (clock_gettime, CLOCK_MONOTONIC; reading the input and setting up the tables are outside it),
 * and loop_cpu_s, the CPU time it took (CLOCK_PROCESS_CPUTIME_ID: on a shared host, the part of
 * the wall time this process actually ran).
 * LRU stamps are 32 bits and never renumbered: at most 2^32 - 2 accesses.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What an access reads of its page, computed once per page as the replay does. */
struct page {
    int32_t l1_base; /* first slot of its L1 dTLB set: (vpn mod l1 sets) * l1 ways */
    int32_t l2_base; /* first slot of its STLB set */
    int32_t node;
    int32_t unused;
};

static void *read_n(FILE *f, size_t size, size_t n, const char *what)
{
    void *p = malloc(size * (n ? n : 1));
    if (!p || fread(p, size, n, f) != n) {
        fprintf(stderr, "tlb_loop: cannot read %s (%zu x %zu bytes)\n", what, n, size);
        exit(2);
    }
    return p;
}

/* The way of the set at tag[base..base+ways) holding page p, or -1. */
static inline int lookup(const int32_t *tag, int ways, int32_t p)
{
    for (int w = 0; w < ways; w++)
        if (tag[w] == p)
            return w;
    return -1;
}

/* Put page p in the set: the first empty way, else the least recently used. */
static inline void fill(int32_t *tag, uint32_t *lru, int ways, int32_t p, uint32_t now)
{
    int v = 0;
    for (int w = 0; w < ways; w++) {
        if (tag[w] < 0) {
            v = w;
            goto put;
        }
        if (lru[w] < lru[v])
            v = w;
    }
put:
    tag[v] = p;
    lru[v] = now;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tlb_loop INPUT\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    char magic[8];
    int64_t n_acc, n_pages;
    int32_t geo[6];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "TLBLOOP1", 8) != 0 ||
        fread(&n_acc, 8, 1, f) != 1 || fread(&n_pages, 8, 1, f) != 1 || fread(geo, 4, 6, f) != 6) {
        fprintf(stderr, "tlb_loop: %s: not a TLBLOOP1 file\n", argv[1]);
        return 2;
    }
    int cpus = geo[0], l1_entries = geo[1], l1_ways = geo[2], l2_entries = geo[3], l2_ways = geo[4];
    if (n_acc < 0 || (uint64_t)n_acc > UINT32_MAX - 2) {
        fprintf(stderr, "tlb_loop: %lld accesses: at most 2^32 - 2\n", (long long)n_acc);
        return 2;
    }
    int l1_sets = l1_entries / l1_ways, l2_sets = l2_entries / l2_ways;

    int32_t *cpu_node = read_n(f, 4, cpus, "cpu_node");
    int64_t *page_vpn = read_n(f, 8, n_pages, "page_vpn");
    int32_t *page_node = read_n(f, 4, n_pages, "page_node");
    int32_t *acc_cpu = read_n(f, 4, n_acc, "access_cpu");
    int32_t *acc_page = read_n(f, 4, n_acc, "access_page");
    fclose(f);

    struct page *pages = malloc(sizeof *pages * (n_pages ? n_pages : 1));
    for (int64_t p = 0; p < n_pages; p++) {
        pages[p].l1_base = (int32_t)(page_vpn[p] % l1_sets) * l1_ways;
        pages[p].l2_base = (int32_t)(page_vpn[p] % l2_sets) * l2_ways;
        pages[p].node = page_node[p];
        pages[p].unused = 0;
    }
    int32_t *l1_tag = malloc(sizeof *l1_tag * cpus * l1_entries);
    int32_t *l2_tag = malloc(sizeof *l2_tag * cpus * l2_entries);
    uint32_t *l1_lru = calloc((size_t)cpus * l1_entries, sizeof *l1_lru);
    uint32_t *l2_lru = calloc((size_t)cpus * l2_entries, sizeof *l2_lru);
    uint64_t (*count)[4] = calloc(cpus, sizeof *count); /* l1 hits, l2 hits, walks, remote */
    memset(l1_tag, 0xff, sizeof *l1_tag * cpus * l1_entries); /* -1: empty */
    memset(l2_tag, 0xff, sizeof *l2_tag * cpus * l2_entries);

    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint32_t now = 0;
    for (int64_t i = 0; i < n_acc; i++) {
        int c = acc_cpu[i];
        int32_t p = acc_page[i];
        const struct page *pg = &pages[p];
        int32_t *t1s = l1_tag + (size_t)c * l1_entries + pg->l1_base;
        uint32_t *r1s = l1_lru + (size_t)c * l1_entries + pg->l1_base;
        now++;
        int w = lookup(t1s, l1_ways, p);
        if (w >= 0) {
            r1s[w] = now;
            count[c][0]++;
        } else {
            int32_t *t2s = l2_tag + (size_t)c * l2_entries + pg->l2_base;
            uint32_t *r2s = l2_lru + (size_t)c * l2_entries + pg->l2_base;
            w = lookup(t2s, l2_ways, p);
            if (w >= 0) {
                r2s[w] = now;
                count[c][1]++;
            } else {
                fill(t2s, r2s, l2_ways, p, now);
                count[c][2]++;
            }
            fill(t1s, r1s, l1_ways, p, now);
        }
        count[c][3] += pg->node != cpu_node[c];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double loop_s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double loop_cpu_s = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);

    static const char *names[4] = {"l1_hits", "l2_hits", "walks", "remote_accesses"};
    printf("{\"accesses\": %lld, \"pages\": %lld, \"cpus\": %d, \"loop_s\": %.6f, "
           "\"loop_cpu_s\": %.6f", (long long)n_acc, (long long)n_pages, cpus, loop_s, loop_cpu_s);
    for (int k = 0; k < 4; k++) {
        printf(", \"%s\": [", names[k]);
        for (int c = 0; c < cpus; c++)
            printf("%s%llu", c ? ", " : "", (unsigned long long)count[c][k]);
        printf("]");
    }
    printf("}\n");
    return 0;
}
