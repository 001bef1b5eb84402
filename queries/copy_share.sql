-- copy_share: Where migration time goes (unmap, flush, copy, remap, other) per run and policy
--
-- Migration time is the sum of batch durations (end_ns - start_ns; the batches of one CPU never
-- overlap, and calls on several CPUs each count their own time, as cycle profiles of
-- migrate_pages() do). Each phase share is that phase's time over migration time, in percent:
-- the seed measured most of it in TLB flushing when pages moved one at a time, and in copying
-- once they moved in batches (its figures: policy_compare's seed_value). A phase is NULL when a
-- batch of the group does not record it (measured runs), rather than a share of what happens to
-- be known.
--
-- Reads: batches, _policies, _sum_known.
--
-- Columns:
--   run              VARCHAR            run directory, as given to the loader
--   trace            VARCHAR            trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy           VARCHAR            migration policy (policy=<name>/)
--   batches          BIGINT   (batches) batches (serial: migration calls; batched: chunks and sync retries)
--   migration_ns     BIGINT   (ns)      migration time: sum of batch durations
--   unmap_ns         BIGINT   (ns)      time unmapping (rmap walk, PTE clear)
--   flush_ns         BIGINT   (ns)      time in TLB flushes (local and IPI rounds)
--   copy_ns          BIGINT   (ns)      time copying page contents
--   remap_ns         BIGINT   (ns)      time installing the new PTEs
--   other_ns         BIGINT   (ns)      everything else (allocation, locking, failed attempts)
--   unmap_pct        DOUBLE   (%)       unmap_ns / migration_ns
--   flush_pct        DOUBLE   (%)       flush_ns / migration_ns
--   copy_pct         DOUBLE   (%)       copy_ns / migration_ns
--   remap_pct        DOUBLE   (%)       remap_ns / migration_ns
--   other_pct        DOUBLE   (%)       other_ns / migration_ns
--   unmap_flush_pct  DOUBLE   (%)       (unmap_ns + flush_ns) / migration_ns

CREATE VIEW _copy_share_sums AS
SELECT
    run, trace, policy,
    count(*) AS batches,
    _sum_known(end_ns - start_ns) AS migration_ns,
    _sum_known(unmap_ns) AS unmap_ns,
    _sum_known(flush_ns) AS flush_ns,
    _sum_known(copy_ns) AS copy_ns,
    _sum_known(remap_ns) AS remap_ns,
    _sum_known(other_ns) AS other_ns
FROM batches
GROUP BY run, trace, policy;

CREATE VIEW copy_share AS
WITH joined AS (
    SELECT
        p.run, p.trace, p.policy,
        coalesce(s.batches, 0) AS batches,
        CASE WHEN s.run IS NULL THEN 0 ELSE s.migration_ns END AS migration_ns,
        CASE WHEN s.run IS NULL THEN 0 ELSE s.unmap_ns END AS unmap_ns,
        CASE WHEN s.run IS NULL THEN 0 ELSE s.flush_ns END AS flush_ns,
        CASE WHEN s.run IS NULL THEN 0 ELSE s.copy_ns END AS copy_ns,
        CASE WHEN s.run IS NULL THEN 0 ELSE s.remap_ns END AS remap_ns,
        CASE WHEN s.run IS NULL THEN 0 ELSE s.other_ns END AS other_ns
    FROM _policies AS p
    LEFT JOIN _copy_share_sums AS s
        ON s.run = p.run AND s.trace IS NOT DISTINCT FROM p.trace AND s.policy = p.policy
)
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    batches::BIGINT AS batches,
    migration_ns::BIGINT AS migration_ns,
    unmap_ns::BIGINT AS unmap_ns,
    flush_ns::BIGINT AS flush_ns,
    copy_ns::BIGINT AS copy_ns,
    remap_ns::BIGINT AS remap_ns,
    other_ns::BIGINT AS other_ns,
    (100.0 * unmap_ns / nullif(migration_ns, 0))::DOUBLE AS unmap_pct,
    (100.0 * flush_ns / nullif(migration_ns, 0))::DOUBLE AS flush_pct,
    (100.0 * copy_ns / nullif(migration_ns, 0))::DOUBLE AS copy_pct,
    (100.0 * remap_ns / nullif(migration_ns, 0))::DOUBLE AS remap_pct,
    (100.0 * other_ns / nullif(migration_ns, 0))::DOUBLE AS other_pct,
    (100.0 * (unmap_ns + flush_ns) / nullif(migration_ns, 0))::DOUBLE AS unmap_flush_pct
FROM joined
ORDER BY run, trace NULLS FIRST, policy;
