-- policy_compare: Each headline metric per policy beside the serial policy's, with the relative change and the seed's figure
--
-- One row per run, trace, metric and policy: the policy's value, the value of policy 'serial' in
-- the same run and trace, and the relative change from serial to this policy. The metrics are the
-- seed's (Huang Ying, "migrate_pages(): batch TLB flushing", Linux 6.3): TLB-flush IPIs (-99.1%
-- with batching), pages migrated per second (+291.7%), the share of migration time in TLB
-- flushing (83.3% serial), copying (43.7% batched) and unmap + flush (8.3% batched); and the cost
-- batching pays in stalls. seed_value and seed_change_pct hold the seed's figure on the row of the
-- policy it was measured for (serial or batched), NULL elsewhere. The metric names are columns of
-- flush_counts, throughput, copy_share and page_stall_summary, which define them.
--
-- Reads: flush_counts, throughput, copy_share, page_stall_summary.
--
-- Columns:
--   run              VARCHAR       run directory, as given to the loader
--   trace            VARCHAR       trace id in a corpus (trace=<id>/), NULL outside corpora
--   metric           VARCHAR       metric: a column name of the view that defines it
--   unit             VARCHAR       unit of value and serial
--   policy           VARCHAR       migration policy (policy=<name>/); serial first, then batched, then the others
--   value            DOUBLE        the metric for this policy, in unit
--   serial           DOUBLE        the metric for policy 'serial' in the same run and trace, in unit; NULL without one
--   change_pct       DOUBLE  (%)   (value - serial) / serial; NULL on the serial row or where serial is 0 or NULL
--   seed_value       DOUBLE        the seed's measured value of this metric and policy, in unit
--   seed_change_pct  DOUBLE  (%)   the seed's measured change from serial to this policy

CREATE VIEW _policy_compare_seed AS
SELECT * FROM (VALUES
    ('ipis_sent', 'batched', NULL::DOUBLE, -99.1::DOUBLE),
    ('pages_per_s', 'batched', NULL, 291.7),
    ('flush_pct', 'serial', 83.3, NULL),
    ('copy_pct', 'batched', 43.7, NULL),
    ('unmap_flush_pct', 'batched', 8.3, NULL)
) AS seed(metric, policy, seed_value, seed_change_pct);

CREATE VIEW _policy_compare_values AS
SELECT
    f.run, f.trace, f.policy,
    unnest([
        {'ord': 1, 'metric': 'ipis_sent', 'unit': 'IPIs', 'value': f.ipis_sent::DOUBLE},
        {'ord': 2, 'metric': 'ipis_useful', 'unit': 'IPIs', 'value': f.ipis_useful::DOUBLE},
        {'ord': 3, 'metric': 'flush_rounds', 'unit': 'rounds', 'value': f.flush_rounds::DOUBLE},
        {'ord': 4, 'metric': 'ipis_per_1000_pages', 'unit': 'IPIs per 1000 pages', 'value': f.ipis_per_1000_pages},
        {'ord': 5, 'metric': 'irq_ns', 'unit': 'ns', 'value': f.irq_ns::DOUBLE},
        {'ord': 6, 'metric': 'pages_migrated', 'unit': 'pages', 'value': t.pages_migrated::DOUBLE},
        {'ord': 7, 'metric': 'migration_ns', 'unit': 'ns', 'value': t.migration_ns::DOUBLE},
        {'ord': 8, 'metric': 'pages_per_s', 'unit': 'pages/s', 'value': t.pages_per_s},
        {'ord': 9, 'metric': 'flush_pct', 'unit': '%', 'value': c.flush_pct},
        {'ord': 10, 'metric': 'copy_pct', 'unit': '%', 'value': c.copy_pct},
        {'ord': 11, 'metric': 'unmap_flush_pct', 'unit': '%', 'value': c.unmap_flush_pct},
        {'ord': 12, 'metric': 'unmap_pct', 'unit': '%', 'value': c.unmap_pct},
        {'ord': 13, 'metric': 'remap_pct', 'unit': '%', 'value': c.remap_pct},
        {'ord': 14, 'metric': 'other_pct', 'unit': '%', 'value': c.other_pct},
        {'ord': 15, 'metric': 'stalls', 'unit': 'accesses', 'value': s.stalls::DOUBLE},
        {'ord': 16, 'metric': 'stall_ns', 'unit': 'ns', 'value': s.stall_ns::DOUBLE},
        {'ord': 17, 'metric': 'stall_p50_ns', 'unit': 'ns', 'value': s.stall_p50_ns::DOUBLE},
        {'ord': 18, 'metric': 'stall_p99_ns', 'unit': 'ns', 'value': s.stall_p99_ns::DOUBLE},
        {'ord': 19, 'metric': 'stall_max_ns', 'unit': 'ns', 'value': s.stall_max_ns::DOUBLE},
        {'ord': 20, 'metric': 'window_p99_ns', 'unit': 'ns', 'value': s.window_p99_ns::DOUBLE}
    ], recursive := true)
FROM flush_counts AS f
JOIN throughput AS t
    ON t.run = f.run AND t.trace IS NOT DISTINCT FROM f.trace AND t.policy = f.policy
JOIN copy_share AS c
    ON c.run = f.run AND c.trace IS NOT DISTINCT FROM f.trace AND c.policy = f.policy
JOIN page_stall_summary AS s
    ON s.run = f.run AND s.trace IS NOT DISTINCT FROM f.trace AND s.policy = f.policy;

CREATE VIEW policy_compare AS
WITH v AS MATERIALIZED (
    -- computed once: the serial values below come from the same rows
    FROM _policy_compare_values
)
SELECT
    v.run::VARCHAR AS run,
    v.trace::VARCHAR AS trace,
    v.metric::VARCHAR AS metric,
    v.unit::VARCHAR AS unit,
    v.policy::VARCHAR AS policy,
    v.value::DOUBLE AS value,
    b.value::DOUBLE AS serial,
    (CASE WHEN v.policy <> 'serial' THEN 100.0 * (v.value - b.value) / nullif(abs(b.value), 0) END)::DOUBLE
        AS change_pct,
    seed.seed_value::DOUBLE AS seed_value,
    seed.seed_change_pct::DOUBLE AS seed_change_pct
FROM v
LEFT JOIN v AS b
    ON b.run = v.run AND b.trace IS NOT DISTINCT FROM v.trace AND b.metric = v.metric
    AND b.policy = 'serial'
LEFT JOIN _policy_compare_seed AS seed
    ON seed.metric = v.metric AND seed.policy = v.policy
ORDER BY v.run, v.trace NULLS FIRST, v.ord, v.policy <> 'serial', v.policy <> 'batched', v.policy;
