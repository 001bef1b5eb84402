-- tradeoff: Pages per second against first-folio latency per sweep point, with the point a stated rule picks
--
-- The trade-off a batch size (or any varied key) is chosen by: the benefit, pages migrated per
-- second of migration time, beside the downside, how long a batch holds its first page unmapped
-- (first-folio latency, throughput) and what the accesses paid (stalls), and the IPIs. Huang Ying
-- asked for exactly this to choose the batch number of the batch-copy series (linux-mm, thread
-- of Shivank Garg's "Accelerate page migration with batch copying and hardware offload", 30 Apr /
-- 8 May 2026).
--
-- One row per point, trace and policy. Over a sweep (tracereplay sweep), each point is a run
-- whose directory ends in its partitions, <column>=<value>/...: point is that path and params its
-- values by column (tracereplay query gives one column per varied key in place of params). Over
-- other runs, point is '' and params NULL, and each run is its own group.
--
-- The rule: among the points of one sweep, trace and policy whose pages/s is within 5% of the
-- best of them, the one with the lowest first-folio p99 latency (then the higher pages/s, then
-- the point's path) is chosen. With the batch size as the varied key that is the smallest batch
-- within 5% of the best pages/s.
--
-- Reads: throughput, page_stall_summary, flush_counts.
--
-- Columns:
--   run                 VARCHAR                 run directory: a sweep's point directory
--   trace               VARCHAR                 trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy              VARCHAR                 migration policy (policy=<name>/)
--   point               VARCHAR                 the point's partition path (migrate_batch_size=8); '' outside sweeps
--   params              MAP(VARCHAR, VARCHAR)   the point's value of each varied key, by partition column
--   pages_migrated      BIGINT   (pages)        pages migrated
--   migration_ns        BIGINT   (ns)           total migration time: sum of batch durations
--   pages_per_s         DOUBLE   (pages/s)      pages_migrated / migration_ns
--   pct_of_best         DOUBLE   (%)            pages_per_s / the best pages_per_s of the group
--   first_folio_p50_ns  BIGINT   (ns)           median first-folio latency of the batches (throughput)
--   first_folio_p99_ns  BIGINT   (ns)           99th percentile first-folio latency
--   stall_p99_ns        BIGINT   (ns)           99th percentile wait of a stalled access
--   stalled_accesses    BIGINT   (accesses)     accesses that waited for a page's remap
--   ipis_sent           BIGINT   (IPIs)         TLB-flush IPIs sent
--   ipis_useful         BIGINT   (IPIs)         IPIs that found a translation to remove
--   chosen              BOOLEAN                 the point the rule picks for its sweep, trace and policy

CREATE VIEW _tradeoff_points AS
WITH split AS (
    SELECT run, string_split(run, '/') AS seg FROM (SELECT DISTINCT run FROM throughput)
), counted AS (
    -- the trailing segments that are partitions of a sweep (key=value, not trace= or policy=)
    SELECT run, seg, coalesce(list_position(list_transform(list_reverse(seg), lambda x:
        NOT (x LIKE '%=%' AND x NOT LIKE 'trace=%' AND x NOT LIKE 'policy=%')), true) - 1,
        len(seg)) AS k
    FROM split
)
SELECT
    run,
    array_to_string(seg[1:len(seg) - k], '/') AS root,
    array_to_string(seg[len(seg) - k + 1:], '/') AS point,
    CASE WHEN k > 0 THEN map_from_entries(list_transform(seg[len(seg) - k + 1:], lambda x:
        {'key': split_part(x, '=', 1), 'value': x[strpos(x, '=') + 1:]})) END AS params
FROM counted;

CREATE VIEW _tradeoff_rows AS
SELECT
    t.run, t.trace, t.policy, p.root, p.point, p.params,
    t.pages_migrated, t.migration_ns, t.pages_per_s,
    t.first_folio_p50_ns, t.first_folio_p99_ns,
    s.stall_p99_ns, s.stalls AS stalled_accesses,
    f.ipis_sent, f.ipis_useful,
    max(t.pages_per_s) OVER (PARTITION BY p.root, t.trace, t.policy) AS best_pages_per_s
FROM throughput AS t
JOIN _tradeoff_points AS p ON p.run = t.run
JOIN page_stall_summary AS s
    ON s.run = t.run AND s.trace IS NOT DISTINCT FROM t.trace AND s.policy = t.policy
JOIN flush_counts AS f
    ON f.run = t.run AND f.trace IS NOT DISTINCT FROM t.trace AND f.policy = t.policy;

CREATE VIEW tradeoff AS
WITH ranked AS (
    SELECT *,
        pages_per_s >= 0.95 * best_pages_per_s AS eligible,
        row_number() OVER (
            PARTITION BY root, trace, policy
            ORDER BY (pages_per_s >= 0.95 * best_pages_per_s) DESC NULLS LAST,
                first_folio_p99_ns ASC NULLS LAST, pages_per_s DESC NULLS LAST, point
        ) AS rank
    FROM _tradeoff_rows
)
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    point::VARCHAR AS point,
    params::MAP(VARCHAR, VARCHAR) AS params,
    pages_migrated::BIGINT AS pages_migrated,
    migration_ns::BIGINT AS migration_ns,
    pages_per_s::DOUBLE AS pages_per_s,
    (100.0 * pages_per_s / nullif(best_pages_per_s, 0))::DOUBLE AS pct_of_best,
    first_folio_p50_ns::BIGINT AS first_folio_p50_ns,
    first_folio_p99_ns::BIGINT AS first_folio_p99_ns,
    stall_p99_ns::BIGINT AS stall_p99_ns,
    stalled_accesses::BIGINT AS stalled_accesses,
    ipis_sent::BIGINT AS ipis_sent,
    ipis_useful::BIGINT AS ipis_useful,
    (rank = 1 AND coalesce(eligible, false))::BOOLEAN AS chosen
FROM ranked
ORDER BY root, trace NULLS FIRST, policy,
    -- points in the order of their values, numbers as numbers (8 before 64)
    list_transform(string_split(point, '/'), lambda x: try_cast(x[strpos(x, '=') + 1:] AS DOUBLE)),
    point;
