-- throughput_per_call: Pages migrated per second of migration time, per migration call
--
-- One row per migration call (req_id: a migrate_pages(2) or move_pages(2) call, or one
-- mm_migrate_pages event of a measured run) with its batches, its pages and its time. Calls of a
-- measured run whose req_id is unknown share one row with a NULL req_id. First-folio latency
-- is as in throughput: first_remap_ns - start_ns of the call's batches.
--
-- Reads: batches, migrations, _sum_known.
--
-- Columns:
--   run                 VARCHAR               run directory, as given to the loader
--   trace               VARCHAR               trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy              VARCHAR               migration policy (policy=<name>/)
--   req_id              BIGINT                migration call
--   cpu                 INTEGER               CPU running the call (the lowest, should batches disagree)
--   start_ns            BIGINT   (ns)         start of the call's first batch
--   end_ns              BIGINT   (ns)         end of its last batch
--   batches             BIGINT   (batches)    batches of the call
--   pages_migrated      BIGINT   (pages)      pages migrated
--   pages_failed        BIGINT   (pages)      pages given up on
--   migration_ns        BIGINT   (ns)         sum of the call's batch durations
--   pages_per_s         DOUBLE   (pages/s)    pages_migrated / migration_ns
--   first_folio_p50_ns  BIGINT   (ns)         median of first_remap_ns - start_ns over the call's batches; NULL without remaps
--   first_folio_p99_ns  BIGINT   (ns)         99th percentile (nearest rank) of the same

CREATE VIEW _throughput_per_call_batches AS
SELECT
    run, trace, policy, req_id,
    min(cpu) AS cpu,
    min(start_ns) AS start_ns,
    max(end_ns) AS end_ns,
    count(*) AS batches,
    _sum_known(end_ns - start_ns) AS migration_ns,
    quantile_disc(first_remap_ns - start_ns, [0.5, 0.99]) AS first_folio_q
FROM batches
GROUP BY run, trace, policy, req_id;

CREATE VIEW _throughput_per_call_pages AS
SELECT
    run, trace, policy, req_id,
    coalesce(sum(coalesce(pages, 1)) FILTER (WHERE status = 'migrated'), 0)::BIGINT AS pages_migrated,
    coalesce(sum(coalesce(pages, 1)) FILTER (WHERE status = 'failed'), 0)::BIGINT AS pages_failed
FROM migrations
GROUP BY run, trace, policy, req_id;

CREATE VIEW throughput_per_call AS
SELECT
    b.run::VARCHAR AS run,
    b.trace::VARCHAR AS trace,
    b.policy::VARCHAR AS policy,
    b.req_id::BIGINT AS req_id,
    b.cpu::INTEGER AS cpu,
    b.start_ns::BIGINT AS start_ns,
    b.end_ns::BIGINT AS end_ns,
    b.batches::BIGINT AS batches,
    coalesce(m.pages_migrated, 0)::BIGINT AS pages_migrated,
    coalesce(m.pages_failed, 0)::BIGINT AS pages_failed,
    b.migration_ns::BIGINT AS migration_ns,
    (1e9 * coalesce(m.pages_migrated, 0) / nullif(b.migration_ns, 0))::DOUBLE AS pages_per_s,
    b.first_folio_q[1]::BIGINT AS first_folio_p50_ns,
    b.first_folio_q[2]::BIGINT AS first_folio_p99_ns
FROM _throughput_per_call_batches AS b
LEFT JOIN _throughput_per_call_pages AS m
    ON m.run = b.run AND m.trace IS NOT DISTINCT FROM b.trace AND m.policy = b.policy
    AND m.req_id IS NOT DISTINCT FROM b.req_id
ORDER BY run, trace NULLS FIRST, policy, start_ns, req_id NULLS LAST;
