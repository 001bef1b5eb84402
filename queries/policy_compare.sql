-- policy_compare: Each headline metric per policy beside a baseline policy's, with the relative change and the seed's figure
--
-- One row per run, trace, metric and policy: the policy's value, the value of the baseline
-- policy of the same run and trace, and the relative change from the baseline to this policy.
-- The baseline is the policy the seed's changes are measured from (baseline_policy of
-- _seed_figures, generated from tracereplay/seed.py) when the run and trace have it, and
-- otherwise their first policy in name order. The metrics are the seed's (Huang Ying,
-- "migrate_pages(): batch TLB flushing", Linux 6.3): TLB-flush IPIs, pages migrated per second,
-- the shares of migration time in TLB flushing, copying and unmap + flush; and the cost batching
-- pays in stalls. seed_value and seed_change_pct hold the seed's figure (_seed_figures) on the
-- row of the metric and policy it was measured for, in a run of the seed experiment's trace (its
-- sha256 in run.json, _run_traces), NULL elsewhere: beside another trace the seed's figures
-- would read as a validation of a workload they were not measured on. seed_change_pct only where
-- the baseline is the seed's, since it is a change from that policy. The metric names are
-- columns of flush_counts, throughput, copy_share and page_stall_summary, which define them.
--
-- Reads: flush_counts, throughput, copy_share, _page_stall_summary_distributions, _policies,
-- _seed_figures, _run_traces.
--
-- Columns:
--   run              VARCHAR       run directory, as given to the loader
--   trace            VARCHAR       trace id in a corpus (trace=<id>/), NULL outside corpora
--   metric           VARCHAR       metric: a column name of the view that defines it
--   unit             VARCHAR       unit of value and baseline
--   policy           VARCHAR       migration policy (policy=<name>/); the baseline first, then the others by name
--   value            DOUBLE        the metric for this policy, in unit
--   baseline_policy  VARCHAR       the policy compared with: the seed's baseline if present, else the first by name
--   baseline         DOUBLE        the metric for baseline_policy in the same run and trace, in unit
--   change_pct       DOUBLE  (%)   (value - baseline) / |baseline|; NULL on the baseline's row or where baseline is 0 or NULL
--   seed_value       DOUBLE        the seed's measured value of this metric and policy, in unit; NULL outside runs of the seed's trace
--   seed_change_pct  DOUBLE  (%)   the seed's measured change from baseline_policy to this policy; NULL outside runs of the seed's trace

CREATE VIEW _policy_compare_baseline AS
SELECT
    run, trace,
    coalesce(
        min(policy) FILTER (WHERE policy IN (SELECT baseline_policy FROM _seed_figures)),
        min(policy)
    ) AS baseline_policy
FROM _policies
GROUP BY run, trace;

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
JOIN _page_stall_summary_distributions AS s
    ON s.run = f.run AND s.trace IS NOT DISTINCT FROM f.trace AND s.policy = f.policy;

CREATE VIEW policy_compare AS
WITH v AS MATERIALIZED (
    -- computed once: the baseline's values below come from the same rows
    SELECT v.*, p.baseline_policy
    FROM _policy_compare_values AS v
    JOIN _policy_compare_baseline AS p ON p.run = v.run AND p.trace IS NOT DISTINCT FROM v.trace
)
SELECT
    v.run::VARCHAR AS run,
    v.trace::VARCHAR AS trace,
    v.metric::VARCHAR AS metric,
    v.unit::VARCHAR AS unit,
    v.policy::VARCHAR AS policy,
    v.value::DOUBLE AS value,
    v.baseline_policy::VARCHAR AS baseline_policy,
    b.value::DOUBLE AS baseline,
    (CASE WHEN v.policy <> v.baseline_policy THEN 100.0 * (v.value - b.value) / nullif(abs(b.value), 0) END)::DOUBLE
        AS change_pct,
    seed.seed_value::DOUBLE AS seed_value,
    (CASE WHEN seed.baseline_policy = v.baseline_policy THEN seed.seed_change_pct END)::DOUBLE
        AS seed_change_pct
FROM v
LEFT JOIN v AS b
    ON b.run = v.run AND b.trace IS NOT DISTINCT FROM v.trace AND b.metric = v.metric
    AND b.policy = v.baseline_policy
LEFT JOIN (
    SELECT DISTINCT r.run, r.trace
    FROM _run_traces AS r
    WHERE r.trace_sha256 IN (SELECT trace_sha256 FROM _seed_figures)
) AS seed_run ON seed_run.run = v.run AND seed_run.trace IS NOT DISTINCT FROM v.trace
LEFT JOIN _seed_figures AS seed
    ON seed.metric = v.metric AND seed.policy = v.policy AND seed_run.run IS NOT NULL
ORDER BY v.run, v.trace NULLS FIRST, v.ord, v.policy <> v.baseline_policy, v.policy;
