-- throughput: Pages migrated per second of migration time, per run and policy
--
-- Migration time is the sum of batch durations (the time CPUs spent in migrate_pages()); with
-- calls on several CPUs it exceeds the elapsed time from the first batch's start to the last
-- one's end, which is given too. The seed's change in pages per second from batching is in
-- policy_compare (seed_change_pct).
-- First-folio latency is what a batch costs the page that waits least: the time from the
-- batch's start until its first page is usable again (first_remap_ns - start_ns of batches).
-- Bigger batches raise pages/s and delay every batch's first remap; Huang Ying asked for the
-- two side by side to choose a batch size (linux-mm, thread of Shivank Garg's "Accelerate page
-- migration with batch copying and hardware offload", 30 Apr / 8 May 2026). Batches that
-- migrated nothing have no first remap and are left out of it.
-- throughput_per_call has the same per migration call.
--
-- Reads: batches, migrations, _policies, _sum_known.
--
-- Columns:
--   run                 VARCHAR               run directory, as given to the loader
--   trace               VARCHAR               trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy              VARCHAR               migration policy (policy=<name>/)
--   calls               BIGINT   (calls)      migration calls (distinct req_id of the batches)
--   batches             BIGINT   (batches)    batches
--   pages_migrated      BIGINT   (pages)      pages migrated
--   pages_failed        BIGINT   (pages)      pages given up on
--   migration_ns        BIGINT   (ns)         sum of batch durations
--   elapsed_ns          BIGINT   (ns)         from the first batch's start to the last batch's end
--   pages_per_s         DOUBLE   (pages/s)    pages_migrated / migration_ns
--   ns_per_page         DOUBLE   (ns/page)    migration_ns / pages_migrated
--   first_folio_p50_ns  BIGINT   (ns)         median of first_remap_ns - start_ns over the batches; NULL without remaps
--   first_folio_p99_ns  BIGINT   (ns)         99th percentile (nearest rank) of the same
--   attempts_aborted    BIGINT   (attempts)   attempts undone after their copy because the page was written (transactional)
--   aborted_ns          BIGINT   (ns)         time of the aborted attempts, copy start to restore (part of migration_ns)
--   aborted_pct         DOUBLE   (%)          aborted_ns / migration_ns

CREATE VIEW _throughput_batches AS
SELECT
    run, trace, policy,
    count(DISTINCT req_id) AS calls,
    count(*) AS batches,
    _sum_known(end_ns - start_ns) AS migration_ns,
    max(end_ns) - min(start_ns) AS elapsed_ns,
    quantile_disc(first_remap_ns - start_ns, [0.5, 0.99]) AS first_folio_q
FROM batches
GROUP BY run, trace, policy;

CREATE VIEW _throughput_pages AS
SELECT
    run, trace, policy,
    coalesce(sum(coalesce(pages, 1)) FILTER (WHERE status = 'migrated'), 0)::BIGINT AS pages_migrated,
    coalesce(sum(coalesce(pages, 1)) FILTER (WHERE status = 'failed'), 0)::BIGINT AS pages_failed,
    count(*) FILTER (WHERE status = 'aborted') AS attempts_aborted,
    coalesce(sum(remap_ns - copy_start_ns) FILTER (WHERE status = 'aborted'), 0) AS aborted_ns
FROM migrations
GROUP BY run, trace, policy;

CREATE VIEW throughput AS
WITH joined AS (
    SELECT
        p.run, p.trace, p.policy,
        coalesce(b.calls, 0) AS calls,
        coalesce(b.batches, 0) AS batches,
        coalesce(m.pages_migrated, 0) AS pages_migrated,
        coalesce(m.pages_failed, 0) AS pages_failed,
        coalesce(m.attempts_aborted, 0) AS attempts_aborted,
        coalesce(m.aborted_ns, 0) AS aborted_ns,
        CASE WHEN b.run IS NULL THEN 0 ELSE b.migration_ns END AS migration_ns,
        coalesce(b.elapsed_ns, 0) AS elapsed_ns,
        b.first_folio_q
    FROM _policies AS p
    LEFT JOIN _throughput_batches AS b
        ON b.run = p.run AND b.trace IS NOT DISTINCT FROM p.trace AND b.policy = p.policy
    LEFT JOIN _throughput_pages AS m
        ON m.run = p.run AND m.trace IS NOT DISTINCT FROM p.trace AND m.policy = p.policy
)
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    calls::BIGINT AS calls,
    batches::BIGINT AS batches,
    pages_migrated::BIGINT AS pages_migrated,
    pages_failed::BIGINT AS pages_failed,
    migration_ns::BIGINT AS migration_ns,
    elapsed_ns::BIGINT AS elapsed_ns,
    (1e9 * pages_migrated / nullif(migration_ns, 0))::DOUBLE AS pages_per_s,
    (migration_ns / nullif(pages_migrated, 0))::DOUBLE AS ns_per_page,
    first_folio_q[1]::BIGINT AS first_folio_p50_ns,
    first_folio_q[2]::BIGINT AS first_folio_p99_ns,
    attempts_aborted::BIGINT AS attempts_aborted,
    aborted_ns::BIGINT AS aborted_ns,
    (100.0 * aborted_ns / nullif(migration_ns, 0))::DOUBLE AS aborted_pct
FROM joined
ORDER BY run, trace NULLS FIRST, policy;
