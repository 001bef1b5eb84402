-- tlb_hits: Where accesses found their translation (L1 dTLB, STLB, page walk), stale hits and remote accesses, per run and policy
--
-- The per-CPU counters of cpu_stats summed over the CPUs: how many accesses found their
-- translation in the L1 dTLB, how many in the STLB, how many walked the page table; how many used
-- the translation of a page already unmapped for migration because the flush had not reached
-- their CPU yet (a stale hit, harmless: the copy starts after the flush); and how many went to
-- memory on another node. Each share is over all accesses. A run without CPU counters (measured
-- runs) counts 0 accesses and has NULL shares.
--
-- Reads: cpu_stats, _policies.
--
-- Columns:
--   run              VARCHAR             run directory, as given to the loader
--   trace            VARCHAR             trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy           VARCHAR             migration policy (policy=<name>/)
--   accesses         BIGINT   (accesses) accesses issued
--   l1_hits          BIGINT   (accesses) translations found in the L1 dTLB (stale hits included)
--   l2_hits          BIGINT   (accesses) translations found in the STLB (stale hits included)
--   walks            BIGINT   (accesses) page walks (TLB misses), stalled ones included
--   stale_hits       BIGINT   (accesses) TLB hits on a page between its unmap and the flush reaching the CPU
--   remote_accesses  BIGINT   (accesses) accesses to a page on another node
--   l1_hit_pct       DOUBLE   (%)        l1_hits / accesses
--   l2_hit_pct       DOUBLE   (%)        l2_hits / accesses
--   walk_pct         DOUBLE   (%)        walks / accesses
--   remote_pct       DOUBLE   (%)        remote_accesses / accesses

CREATE VIEW _tlb_hits_sums AS
SELECT
    run, trace, policy,
    sum(accesses) AS accesses,
    sum(l1_hits) AS l1_hits,
    sum(l2_hits) AS l2_hits,
    sum(walks) AS walks,
    sum(stale_hits) AS stale_hits,
    sum(remote_accesses) AS remote_accesses
FROM cpu_stats
GROUP BY run, trace, policy;

CREATE VIEW tlb_hits AS
WITH joined AS (
    SELECT
        p.run, p.trace, p.policy,
        coalesce(s.accesses, 0) AS accesses,
        coalesce(s.l1_hits, 0) AS l1_hits,
        coalesce(s.l2_hits, 0) AS l2_hits,
        coalesce(s.walks, 0) AS walks,
        coalesce(s.stale_hits, 0) AS stale_hits,
        coalesce(s.remote_accesses, 0) AS remote_accesses
    FROM _policies AS p
    LEFT JOIN _tlb_hits_sums AS s
        ON s.run = p.run AND s.trace IS NOT DISTINCT FROM p.trace AND s.policy = p.policy
)
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    accesses::BIGINT AS accesses,
    l1_hits::BIGINT AS l1_hits,
    l2_hits::BIGINT AS l2_hits,
    walks::BIGINT AS walks,
    stale_hits::BIGINT AS stale_hits,
    remote_accesses::BIGINT AS remote_accesses,
    (100.0 * l1_hits / nullif(accesses, 0))::DOUBLE AS l1_hit_pct,
    (100.0 * l2_hits / nullif(accesses, 0))::DOUBLE AS l2_hit_pct,
    (100.0 * walks / nullif(accesses, 0))::DOUBLE AS walk_pct,
    (100.0 * remote_accesses / nullif(accesses, 0))::DOUBLE AS remote_pct
FROM joined
ORDER BY run, trace NULLS FIRST, policy;
