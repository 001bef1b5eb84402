-- measured_vs_model: A capture's measured metrics beside each model policy's replay of the same capture, with their ratio
--
-- For a run directory that holds an import (policy=measured, `tracereplay import CAPTURE -o RUN
-- --as-trace T`) and replays of its trace (`tracereplay replay T -o RUN`): one row per metric
-- and model policy, with the measured value, the policy's value and model / measured. The
-- metrics are defined once in flush_counts and page_stall_summary where both sides mean the
-- same; where a measured table holds more than the replay models, the measured side is
-- narrowed here, as each metric says:
--
--   flush_rounds    measured: tlb_flush rows inside a migration call with reason 2 (local
--                   shootdown, the batched flush), 3 (local mm shootdown) or 4 (remote IPI
--                   send). A round that sends IPIs and also flushes locally can trace 4 and 2,
--                   so this is an upper bound of the rounds. Model: flush_counts.flush_rounds.
--   ipi_rounds      measured: reason 4 rows inside a call; model: rounds with targets.
--   ipis_sent       measured: receivers that traced a flush (reason 1), a lower bound.
--   pages_migrated  measured: sum of nr_succeeded of the calls (pages without a PTE included,
--                   as the trace of --as-trace carries them); model: pages migrated.
--   window_p50_ns, window_p99_ns  unmapped windows of the pages the capture unmapped: the
--                   measured set..remove_migration_pte windows; in the model the same pages
--                   (below _measured_vs_model_unmapped_vpn, where --as-trace puts the pages it
--                   moved without a PTE, which have no measured window). Nearest-rank.
--   stalls, stall_p50_ns, stall_p99_ns, stall_max_ns  from page_stall_summary; measured stalls
--                   are user faults inside a window and their stall_ns a lower bound.
--
-- A capture is closed-loop by nature: a thread that waits on a migration entry issues its next
-- access only after the wait. The trace's accesses are the capture's faults at the times they
-- happened, waits included; a replay runs open loop (a stall delays no later access) unless
-- `replay --closed-loop` (docs/model.md). `mode` says which, from the replay's run.json.
-- A capture's call times are measured too: with migrate.call_start = 'trace' each call starts
-- at its time in the capture, with 'queued' (the default) no earlier than the model's end of
-- the previous call on its CPU, so a call the model makes longer delays every later one.
-- `call_start` says which.
--
-- Reads: flushes, batches, migrations, stalls, flush_counts, page_stall_summary, _policies,
-- _run_traces.
--
-- Columns:
--   run       VARCHAR        run directory, as given to the loader
--   trace     VARCHAR        trace id in a corpus (trace=<id>/), NULL outside corpora
--   metric    VARCHAR        metric name (see above)
--   unit      VARCHAR        unit of measured and model
--   policy    VARCHAR        model policy (policy=<name>/) compared with policy=measured
--   measured  DOUBLE         the capture's value, in unit; NULL where the capture does not record it
--   model     DOUBLE         the policy's value on the capture's trace, in unit
--   ratio     DOUBLE         model / measured; NULL where measured is 0 or NULL
--   mode      VARCHAR        the policy's replay: 'open loop' or 'closed loop' (NULL: unknown)
--   call_start VARCHAR       the policy's replay's migrate.call_start: 'queued' or 'trace' (NULL: unknown)

CREATE VIEW _measured_vs_model_unmapped_vpn AS
-- tracereplay.importer._as_trace.UNMAPPED_BASE (2^56) >> 12
SELECT (1::BIGINT << 44) AS vpn;

CREATE VIEW _measured_vs_model_windows AS
SELECT
    run, trace, policy,
    quantile_disc(remap_ns - unmap_ns, [0.5, 0.99]) AS q
FROM migrations
WHERE status = 'migrated' AND vpn < (SELECT vpn FROM _measured_vs_model_unmapped_vpn)
GROUP BY run, trace, policy;

CREATE VIEW _measured_vs_model_values AS
SELECT
    p.run, p.trace, p.policy,
    unnest([
        {'ord': 1, 'metric': 'flush_rounds', 'unit': 'rounds', 'value': f.flush_rounds::DOUBLE},
        {'ord': 2, 'metric': 'ipi_rounds', 'unit': 'rounds', 'value': f.ipi_rounds::DOUBLE},
        {'ord': 3, 'metric': 'ipis_sent', 'unit': 'IPIs', 'value': f.ipis_sent::DOUBLE},
        {'ord': 4, 'metric': 'pages_migrated', 'unit': 'pages', 'value': f.pages_migrated::DOUBLE},
        {'ord': 5, 'metric': 'window_p50_ns', 'unit': 'ns', 'value': w.q[1]::DOUBLE},
        {'ord': 6, 'metric': 'window_p99_ns', 'unit': 'ns', 'value': w.q[2]::DOUBLE},
        {'ord': 7, 'metric': 'stalls', 'unit': 'accesses', 'value': s.stalls::DOUBLE},
        {'ord': 8, 'metric': 'stall_p50_ns', 'unit': 'ns', 'value': s.stall_p50_ns::DOUBLE},
        {'ord': 9, 'metric': 'stall_p99_ns', 'unit': 'ns', 'value': s.stall_p99_ns::DOUBLE},
        {'ord': 10, 'metric': 'stall_max_ns', 'unit': 'ns', 'value': s.stall_max_ns::DOUBLE}
    ], recursive := true)
FROM _policies AS p
JOIN flush_counts AS f
    ON f.run = p.run AND f.trace IS NOT DISTINCT FROM p.trace AND f.policy = p.policy
JOIN page_stall_summary AS s
    ON s.run = p.run AND s.trace IS NOT DISTINCT FROM p.trace AND s.policy = p.policy
LEFT JOIN _measured_vs_model_windows AS w
    ON w.run = p.run AND w.trace IS NOT DISTINCT FROM p.trace AND w.policy = p.policy
WHERE p.policy <> 'measured';

CREATE VIEW _measured_vs_model_measured AS
WITH r AS (
    SELECT
        run, trace,
        count(*) FILTER (WHERE reason IN (2, 3, 4)) AS flush_rounds,
        count(*) FILTER (WHERE reason = 4) AS ipi_rounds,
        sum(targets) FILTER (WHERE reason = 4) AS ipis_sent
    FROM flushes
    WHERE policy = 'measured' AND req_id IS NOT NULL
    GROUP BY run, trace
), b AS (
    SELECT run, trace, sum(nr_succeeded) AS pages
    FROM batches
    WHERE policy = 'measured'
    GROUP BY run, trace
)
SELECT
    p.run, p.trace,
    unnest([
        {'metric': 'flush_rounds', 'value': coalesce(r.flush_rounds, 0)::DOUBLE},
        {'metric': 'ipi_rounds', 'value': coalesce(r.ipi_rounds, 0)::DOUBLE},
        {'metric': 'ipis_sent', 'value': coalesce(r.ipis_sent, 0)::DOUBLE},
        {'metric': 'pages_migrated', 'value': b.pages::DOUBLE},
        {'metric': 'window_p50_ns', 'value': w.q[1]::DOUBLE},
        {'metric': 'window_p99_ns', 'value': w.q[2]::DOUBLE},
        {'metric': 'stalls', 'value': s.stalls::DOUBLE},
        {'metric': 'stall_p50_ns', 'value': s.stall_p50_ns::DOUBLE},
        {'metric': 'stall_p99_ns', 'value': s.stall_p99_ns::DOUBLE},
        {'metric': 'stall_max_ns', 'value': s.stall_max_ns::DOUBLE}
    ], recursive := true)
FROM _policies AS p
JOIN page_stall_summary AS s
    ON s.run = p.run AND s.trace IS NOT DISTINCT FROM p.trace AND s.policy = p.policy
LEFT JOIN r ON r.run = p.run AND r.trace IS NOT DISTINCT FROM p.trace
LEFT JOIN b ON b.run = p.run AND b.trace IS NOT DISTINCT FROM p.trace
LEFT JOIN _measured_vs_model_windows AS w
    ON w.run = p.run AND w.trace IS NOT DISTINCT FROM p.trace AND w.policy = p.policy
WHERE p.policy = 'measured';

CREATE VIEW measured_vs_model AS
SELECT
    v.run::VARCHAR AS run,
    v.trace::VARCHAR AS trace,
    v.metric::VARCHAR AS metric,
    v.unit::VARCHAR AS unit,
    v.policy::VARCHAR AS policy,
    m.value::DOUBLE AS measured,
    v.value::DOUBLE AS model,
    (v.value / nullif(m.value, 0))::DOUBLE AS ratio,
    (CASE WHEN rt.closed_loop THEN 'closed loop' WHEN NOT rt.closed_loop THEN 'open loop' END)::VARCHAR AS mode,
    rt.call_start::VARCHAR AS call_start
FROM _measured_vs_model_values AS v
JOIN _measured_vs_model_measured AS m
    ON m.run = v.run AND m.trace IS NOT DISTINCT FROM v.trace AND m.metric = v.metric
LEFT JOIN (
    SELECT run, trace, policy, bool_or(closed_loop) AS closed_loop, min(call_start) AS call_start
    FROM _run_traces
    GROUP BY run, trace, policy
) AS rt
    ON rt.run = v.run AND rt.trace IS NOT DISTINCT FROM v.trace AND rt.policy = v.policy
ORDER BY v.run, v.trace NULLS FIRST, v.ord, v.policy;
