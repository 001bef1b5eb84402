-- Generated from schemas/events.v1.json and queries/*.sql by tracereplay.query.load_sql();
-- do not edit. Set the variable run to a glob of policy directories first:
--   duckdb -cmd "SET VARIABLE run = 'out/policy=*'" -cmd ".read queries/_load.sql" -c "FROM policy_compare"

CREATE OR REPLACE VIEW flushes AS
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    flush_id::BIGINT AS flush_id,
    ts_ns::BIGINT AS ts_ns,
    end_ns::BIGINT AS end_ns,
    cpu::INTEGER AS cpu,
    pid::INTEGER AS pid,
    req_id::BIGINT AS req_id,
    batch_id::BIGINT AS batch_id,
    pages::INTEGER AS pages,
    targets::INTEGER AS targets,
    targets_holding::INTEGER AS targets_holding,
    target_full_flush::BOOLEAN AS target_full_flush,
    cost_ns::BIGINT AS cost_ns,
    reason::TINYINT AS reason,
    reason_name::VARCHAR AS reason_name,
    mechanism::VARCHAR AS mechanism,
    cpus_reached::INTEGER AS cpus_reached,
    reached_holding::INTEGER AS reached_holding
FROM (
    SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS trace, NULL::VARCHAR AS policy, NULL::BIGINT AS flush_id, NULL::BIGINT AS ts_ns, NULL::BIGINT AS end_ns, NULL::INTEGER AS cpu, NULL::INTEGER AS pid, NULL::BIGINT AS req_id, NULL::BIGINT AS batch_id, NULL::INTEGER AS pages, NULL::INTEGER AS targets, NULL::INTEGER AS targets_holding, NULL::BOOLEAN AS target_full_flush, NULL::BIGINT AS cost_ns, NULL::TINYINT AS reason, NULL::VARCHAR AS reason_name, NULL::VARCHAR AS mechanism, NULL::INTEGER AS cpus_reached, NULL::INTEGER AS reached_holding WHERE false
    UNION ALL BY NAME
    SELECT getvariable('run') AS run, * FROM read_parquet(getvariable('run') || '/flushes.parquet', hive_partitioning = true, hive_types_autocast = false, union_by_name = true)
);

CREATE OR REPLACE VIEW migrations AS
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    req_id::BIGINT AS req_id,
    batch_id::BIGINT AS batch_id,
    cpu::INTEGER AS cpu,
    pid::INTEGER AS pid,
    vpn::BIGINT AS vpn,
    pos_in_batch::INTEGER AS pos_in_batch,
    src_node::INTEGER AS src_node,
    dst_node::INTEGER AS dst_node,
    unmap_ns::BIGINT AS unmap_ns,
    flush_ns::BIGINT AS flush_ns,
    copy_start_ns::BIGINT AS copy_start_ns,
    copy_end_ns::BIGINT AS copy_end_ns,
    remap_ns::BIGINT AS remap_ns,
    status::VARCHAR AS status,
    attempts::INTEGER AS attempts,
    pages::INTEGER AS pages,
    pfn::BIGINT AS pfn
FROM (
    SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS trace, NULL::VARCHAR AS policy, NULL::BIGINT AS req_id, NULL::BIGINT AS batch_id, NULL::INTEGER AS cpu, NULL::INTEGER AS pid, NULL::BIGINT AS vpn, NULL::INTEGER AS pos_in_batch, NULL::INTEGER AS src_node, NULL::INTEGER AS dst_node, NULL::BIGINT AS unmap_ns, NULL::BIGINT AS flush_ns, NULL::BIGINT AS copy_start_ns, NULL::BIGINT AS copy_end_ns, NULL::BIGINT AS remap_ns, NULL::VARCHAR AS status, NULL::INTEGER AS attempts, NULL::INTEGER AS pages, NULL::BIGINT AS pfn WHERE false
    UNION ALL BY NAME
    SELECT getvariable('run') AS run, * FROM read_parquet(getvariable('run') || '/migrations.parquet', hive_partitioning = true, hive_types_autocast = false, union_by_name = true)
);

CREATE OR REPLACE VIEW batches AS
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    batch_id::BIGINT AS batch_id,
    req_id::BIGINT AS req_id,
    cpu::INTEGER AS cpu,
    pid::INTEGER AS pid,
    kind::VARCHAR AS kind,
    mode::VARCHAR AS mode,
    reason::VARCHAR AS reason,
    pages::INTEGER AS pages,
    nr_succeeded::INTEGER AS nr_succeeded,
    nr_failed::INTEGER AS nr_failed,
    start_ns::BIGINT AS start_ns,
    end_ns::BIGINT AS end_ns,
    unmap_ns::BIGINT AS unmap_ns,
    flush_ns::BIGINT AS flush_ns,
    copy_ns::BIGINT AS copy_ns,
    remap_ns::BIGINT AS remap_ns,
    other_ns::BIGINT AS other_ns,
    first_remap_ns::BIGINT AS first_remap_ns,
    folios::INTEGER AS folios
FROM (
    SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS trace, NULL::VARCHAR AS policy, NULL::BIGINT AS batch_id, NULL::BIGINT AS req_id, NULL::INTEGER AS cpu, NULL::INTEGER AS pid, NULL::VARCHAR AS kind, NULL::VARCHAR AS mode, NULL::VARCHAR AS reason, NULL::INTEGER AS pages, NULL::INTEGER AS nr_succeeded, NULL::INTEGER AS nr_failed, NULL::BIGINT AS start_ns, NULL::BIGINT AS end_ns, NULL::BIGINT AS unmap_ns, NULL::BIGINT AS flush_ns, NULL::BIGINT AS copy_ns, NULL::BIGINT AS remap_ns, NULL::BIGINT AS other_ns, NULL::BIGINT AS first_remap_ns, NULL::INTEGER AS folios WHERE false
    UNION ALL BY NAME
    SELECT getvariable('run') AS run, * FROM read_parquet(getvariable('run') || '/batches.parquet', hive_partitioning = true, hive_types_autocast = false, union_by_name = true)
);

CREATE OR REPLACE VIEW stalls AS
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    ts_ns::BIGINT AS ts_ns,
    cpu::INTEGER AS cpu,
    pid::INTEGER AS pid,
    vpn::BIGINT AS vpn,
    stall_ns::BIGINT AS stall_ns,
    batch_id::BIGINT AS batch_id,
    req_id::BIGINT AS req_id
FROM (
    SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS trace, NULL::VARCHAR AS policy, NULL::BIGINT AS ts_ns, NULL::INTEGER AS cpu, NULL::INTEGER AS pid, NULL::BIGINT AS vpn, NULL::BIGINT AS stall_ns, NULL::BIGINT AS batch_id, NULL::BIGINT AS req_id WHERE false
    UNION ALL BY NAME
    SELECT getvariable('run') AS run, * FROM read_parquet(getvariable('run') || '/stalls.parquet', hive_partitioning = true, hive_types_autocast = false, union_by_name = true)
);

CREATE OR REPLACE VIEW cpu_stats AS
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    cpu::INTEGER AS cpu,
    node::INTEGER AS node,
    accesses::BIGINT AS accesses,
    writes::BIGINT AS writes,
    l1_hits::BIGINT AS l1_hits,
    l2_hits::BIGINT AS l2_hits,
    walks::BIGINT AS walks,
    stale_hits::BIGINT AS stale_hits,
    stalls::BIGINT AS stalls,
    stall_ns::BIGINT AS stall_ns,
    ipis_received::BIGINT AS ipis_received,
    ipis_useful::BIGINT AS ipis_useful,
    full_flushes::BIGINT AS full_flushes,
    entries_flushed::BIGINT AS entries_flushed,
    irq_ns::BIGINT AS irq_ns,
    remote_accesses::BIGINT AS remote_accesses,
    mem_ns::BIGINT AS mem_ns
FROM (
    SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS trace, NULL::VARCHAR AS policy, NULL::INTEGER AS cpu, NULL::INTEGER AS node, NULL::BIGINT AS accesses, NULL::BIGINT AS writes, NULL::BIGINT AS l1_hits, NULL::BIGINT AS l2_hits, NULL::BIGINT AS walks, NULL::BIGINT AS stale_hits, NULL::BIGINT AS stalls, NULL::BIGINT AS stall_ns, NULL::BIGINT AS ipis_received, NULL::BIGINT AS ipis_useful, NULL::BIGINT AS full_flushes, NULL::BIGINT AS entries_flushed, NULL::BIGINT AS irq_ns, NULL::BIGINT AS remote_accesses, NULL::BIGINT AS mem_ns WHERE false
    UNION ALL BY NAME
    SELECT getvariable('run') AS run, * FROM read_parquet(getvariable('run') || '/cpu_stats.parquet', hive_partitioning = true, hive_types_autocast = false, union_by_name = true)
);

CREATE OR REPLACE VIEW _run_traces AS
SELECT getvariable('run')::VARCHAR AS run, nullif(regexp_extract(filename, 'trace=([^/]+)/policy=', 1), '')::VARCHAR AS trace, json ->> '$.policy'::VARCHAR AS policy, (json ->> '$.trace.sha256')::VARCHAR AS trace_sha256, ((json -> '$.stalls') IS NOT NULL)::BOOLEAN AS faults_captured, (json ->> '$.closed_loop')::BOOLEAN AS closed_loop, (json ->> '$.config.migrate.call_start')::VARCHAR AS call_start FROM read_json_objects(getvariable('run') || '/run.json', filename = true);

-- _seed_figures: The seed's published figures; generated from tracereplay/seed.py
--
-- Source: Huang Ying, "migrate_pages(): batch TLB flushing", LKML, September 2022; Linux 6.3, commit 7e12beb8ca2a.
-- One row per figure: the value of a metric of policy_compare for one policy, or the
-- relative change of the metric from baseline_policy to that policy.
--
-- Columns:
--   figure           VARCHAR       the figure's key (tracereplay.seed)
--   label            VARCHAR       what it measures, in words
--   metric           VARCHAR       the metric of policy_compare it gives
--   policy           VARCHAR       the policy it was measured for
--   baseline_policy  VARCHAR       the policy the seed's changes are measured from
--   seed_value       DOUBLE        the measured value, in the metric's unit; NULL for a change
--   seed_change_pct  DOUBLE  (%)   the measured change from baseline_policy; NULL for a value
--   trace_sha256     VARCHAR       sha256 of the seed experiment's trace (sample_traces/seed.parquet)

CREATE VIEW _seed_figures AS
SELECT * FROM (VALUES
    ('ipis_change', 'TLB-flush IPIs', 'ipis_sent', 'batched', 'serial', NULL::DOUBLE, -99.1::DOUBLE, '69fd715094aa0711d6713a1fa22fa664ecd907862dac62389259661ff7166e27'),
    ('pages_per_s_change', 'pages migrated per second', 'pages_per_s', 'batched', 'serial', NULL::DOUBLE, 291.7::DOUBLE, '69fd715094aa0711d6713a1fa22fa664ecd907862dac62389259661ff7166e27'),
    ('serial_flush_share', 'share of migration time flushing', 'flush_pct', 'serial', 'serial', 83.3::DOUBLE, NULL::DOUBLE, '69fd715094aa0711d6713a1fa22fa664ecd907862dac62389259661ff7166e27'),
    ('batched_copy_share', 'share of migration time copying', 'copy_pct', 'batched', 'serial', 43.7::DOUBLE, NULL::DOUBLE, '69fd715094aa0711d6713a1fa22fa664ecd907862dac62389259661ff7166e27'),
    ('batched_unmap_flush_share', 'share unmapping + flushing', 'unmap_flush_pct', 'batched', 'serial', 8.3::DOUBLE, NULL::DOUBLE, '69fd715094aa0711d6713a1fa22fa664ecd907862dac62389259661ff7166e27')
) AS seed(figure, label, metric, policy, baseline_policy, seed_value, seed_change_pct, trace_sha256);

-- _common: Helpers the query views share; not a query of its own
--
-- Reads: flushes, migrations, batches, stalls, cpu_stats, _run_traces.

-- Sum of x over the group, or NULL when a row of the group lacks x. Measured runs leave what the
-- kernel does not record NULL, and a sum over the rows that have it would pass for a complete
-- one. An empty group sums to 0.
CREATE OR REPLACE MACRO _sum_known(x) AS CASE WHEN count(x) = count(*) THEN coalesce(sum(x), 0) END;

-- Every (run, trace, policy) with rows in any event table. Views start from it so that a policy
-- without flushes or stalls still gets its row, with zeros rather than no row. A table, filled
-- when the views are loaded (and again by tracereplay.query.Session for the next run): as a
-- view, a query would bind its five scans again for every view that starts from it, which cost
-- more than the rest of a query over one run.
CREATE OR REPLACE TABLE _policies AS
SELECT DISTINCT run, trace, policy
FROM (
    SELECT run, trace, policy FROM flushes
    UNION ALL SELECT run, trace, policy FROM migrations
    UNION ALL SELECT run, trace, policy FROM batches
    UNION ALL SELECT run, trace, policy FROM stalls
    UNION ALL SELECT run, trace, policy FROM cpu_stats
);

-- Every (run, trace, policy) whose accesses were replayed: a replay writes a cpu_stats row per
-- CPU. A measured run (tracereplay import) has none: its capture holds no access stream and no
-- per-CPU counters, so what only a replay observes (stalls, IPIs received, interrupt time) is
-- unknown there and the views give NULL for it, not 0.
CREATE OR REPLACE VIEW _replayed AS
SELECT DISTINCT run, trace, policy FROM cpu_stats;

-- Every (run, trace, policy) whose stalls are observed: a replay, or a measured run that
-- captured the page faults (run.json's stalls, _run_traces: stalls are the faults inside a
-- migration window).
CREATE OR REPLACE VIEW _stalls_observed AS
SELECT run, trace, policy FROM _replayed
UNION
SELECT DISTINCT run, trace, policy FROM _run_traces WHERE faults_captured;

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

-- flush_counts: TLB-flush rounds and IPIs per run and policy, per 1000 migrated pages
--
-- How many TLB-flush IPIs a policy sends; how many of them found a translation of a page being
-- migrated (useful) and how many did not (wasted: Linux sends one to every CPU in mm_cpumask, not
-- knowing which of them cache the page); what the responders paid; and how the rounds split into
-- single-page, ranged and full flushes. A round is one row of `flushes`; task-switch and
-- receiver-side events (reason 0, 1, 5), which measured runs may hold, are not rounds.
--
-- Measured runs (tracereplay import): every remote IPI send (reason 4) is an IPI round (the
-- kernel traces it before it skips CPUs in lazy-TLB mode, so now and then a round reached none),
-- but its `targets` counts only the receivers that traced a flush (reason 1). A CPU that takes
-- the IPI with nothing to flush (lazy, or already up to date) returns without tracing, so
-- measured `ipis_sent` is a lower bound of the IPIs sent, and `ipis_per_1000_pages` with it.
--
-- Reads: flushes, cpu_stats, _policies, _sum_known, _replayed, _throughput_pages.
--
-- Columns:
--   run                    VARCHAR           run directory, as given to the loader
--   trace                  VARCHAR           trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy                 VARCHAR           migration policy (policy=<name>/)
--   flush_rounds           BIGINT   (rounds) initiator flush rounds, local-only ones included
--   ipi_rounds             BIGINT   (rounds) rounds that sent IPIs: modelled rounds with targets > 0 (a broadcast round, INVLPGB or TLBI, sends none), measured reason 4
--   ipis_sent              BIGINT   (IPIs)   IPIs sent (sum of targets; measured: a lower bound); NULL when a round lacks it
--   ipis_useful            BIGINT   (IPIs)   IPIs that found a translation to remove; NULL when unknown (measured)
--   ipis_wasted            BIGINT   (IPIs)   ipis_sent - ipis_useful
--   useful_pct             DOUBLE   (%)      ipis_useful / ipis_sent
--   single_page_flushes    BIGINT   (rounds) rounds flushing one page
--   range_flushes          BIGINT   (rounds) rounds flushing 2 pages up to the full-flush ceiling
--   full_flushes           BIGINT   (rounds) rounds flushing the whole address space (pages = -1)
--   flush_ns               BIGINT   (ns)     initiator time in flush rounds (sum of cost_ns)
--   ipis_received          BIGINT   (IPIs)   flush IPIs the CPUs counted (cpu_stats; equals ipis_sent in a replay); NULL when unknown (measured)
--   irq_ns                 BIGINT   (ns)     time the responders spent interrupted by flush IPIs; NULL when unknown (measured)
--   pages_migrated         BIGINT   (pages)  base pages migrated (the pages of the migrations rows with status 'migrated')
--   ipis_per_1000_pages    DOUBLE   (IPIs per 1000 pages)   ipis_sent * 1000 / pages_migrated
--   rounds_per_1000_pages  DOUBLE   (rounds per 1000 pages) flush_rounds * 1000 / pages_migrated

CREATE VIEW _flush_counts_rounds AS
SELECT
    run, trace, policy,
    count(*) AS flush_rounds,
    count(*) FILTER (WHERE reason = 4 OR targets > 0) AS ipi_rounds,
    _sum_known(targets) AS ipis_sent,
    _sum_known(targets_holding) AS ipis_useful,
    count(*) FILTER (WHERE pages = 1 AND NOT coalesce(target_full_flush, false)) AS single_page_flushes,
    count(*) FILTER (WHERE pages > 1 AND NOT coalesce(target_full_flush, false)) AS range_flushes,
    count(*) FILTER (WHERE pages = -1 OR coalesce(target_full_flush, false)) AS full_flushes,
    _sum_known(cost_ns) AS flush_ns
FROM flushes
WHERE reason IS NULL OR reason NOT IN (0, 1, 5)
GROUP BY run, trace, policy;

CREATE VIEW _flush_counts_cpus AS
SELECT run, trace, policy, sum(ipis_received) AS ipis_received, sum(irq_ns) AS irq_ns
FROM cpu_stats
GROUP BY run, trace, policy;

CREATE VIEW flush_counts AS
WITH joined AS (
    -- A policy without rounds sent nothing: zeros, not NULLs (NULL stays for "not recorded").
    SELECT
        p.run, p.trace, p.policy,
        coalesce(r.flush_rounds, 0) AS flush_rounds,
        coalesce(r.ipi_rounds, 0) AS ipi_rounds,
        CASE WHEN r.run IS NULL THEN 0 ELSE r.ipis_sent END AS ipis_sent,
        CASE WHEN r.run IS NULL THEN 0 ELSE r.ipis_useful END AS ipis_useful,
        coalesce(r.single_page_flushes, 0) AS single_page_flushes,
        coalesce(r.range_flushes, 0) AS range_flushes,
        coalesce(r.full_flushes, 0) AS full_flushes,
        CASE WHEN r.run IS NULL THEN 0 ELSE r.flush_ns END AS flush_ns,
        -- counted by the replay's CPUs only: unknown (NULL) in a measured run (_replayed)
        CASE WHEN x.run IS NOT NULL THEN coalesce(c.ipis_received, 0) END AS ipis_received,
        CASE WHEN x.run IS NOT NULL THEN coalesce(c.irq_ns, 0) END AS irq_ns,
        coalesce(m.pages_migrated, 0) AS pages_migrated
    FROM _policies AS p
    LEFT JOIN _flush_counts_rounds AS r
        ON r.run = p.run AND r.trace IS NOT DISTINCT FROM p.trace AND r.policy = p.policy
    LEFT JOIN _flush_counts_cpus AS c
        ON c.run = p.run AND c.trace IS NOT DISTINCT FROM p.trace AND c.policy = p.policy
    LEFT JOIN _replayed AS x
        ON x.run = p.run AND x.trace IS NOT DISTINCT FROM p.trace AND x.policy = p.policy
    -- pages_migrated as the throughput view defines it
    LEFT JOIN _throughput_pages AS m
        ON m.run = p.run AND m.trace IS NOT DISTINCT FROM p.trace AND m.policy = p.policy
)
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    flush_rounds::BIGINT AS flush_rounds,
    ipi_rounds::BIGINT AS ipi_rounds,
    ipis_sent::BIGINT AS ipis_sent,
    ipis_useful::BIGINT AS ipis_useful,
    (ipis_sent - ipis_useful)::BIGINT AS ipis_wasted,
    (100.0 * ipis_useful / nullif(ipis_sent, 0))::DOUBLE AS useful_pct,
    single_page_flushes::BIGINT AS single_page_flushes,
    range_flushes::BIGINT AS range_flushes,
    full_flushes::BIGINT AS full_flushes,
    flush_ns::BIGINT AS flush_ns,
    ipis_received::BIGINT AS ipis_received,
    irq_ns::BIGINT AS irq_ns,
    pages_migrated::BIGINT AS pages_migrated,
    (1000.0 * ipis_sent / nullif(pages_migrated, 0))::DOUBLE AS ipis_per_1000_pages,
    (1000.0 * flush_rounds / nullif(pages_migrated, 0))::DOUBLE AS rounds_per_1000_pages
FROM joined
ORDER BY run, trace NULLS FIRST, policy;

-- page_stall: Per migrated page, how long it was unmapped and how long accessing threads waited on it
--
-- A page is unmapped from its unmap (PTE replaced by a migration entry) to its remap (new PTE
-- installed, waiters woken): its window. A thread that touches the page in the window faults on the
-- migration entry and sleeps until the remap (a stall). In a batch, page i waits through the unmap
-- of the whole batch, the flush and the moves of pages 0..i, so windows and stalls grow with
-- pos_in_batch (see page_stall_by_position; page_stall_summary has the distribution).
-- A stall belongs to the page's row of the same migration call (req_id), which also covers
-- stalls during an earlier attempt of that page in the call; where req_id is unknown (measured
-- runs), to the row whose window contains the access.
--
-- Reads: migrations, stalls.
--
-- Columns:
--   run                VARCHAR             run directory, as given to the loader
--   trace              VARCHAR             trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy             VARCHAR             migration policy (policy=<name>/)
--   req_id             BIGINT              migration call
--   batch_id           BIGINT              batch the page's final attempt ran in
--   cpu                INTEGER             CPU running the migration
--   pid                INTEGER             address space of the page
--   vpn                BIGINT   (pages)    virtual page number
--   pos_in_batch       INTEGER             position of the page in its batch, in unmap order, from 0
--   status             VARCHAR             migrated, failed or unpaired (measured)
--   unmap_ns           BIGINT   (ns)       time the PTE was replaced by a migration entry
--   remap_ns           BIGINT   (ns)       time the new PTE was installed
--   window_ns          BIGINT   (ns)       remap_ns - unmap_ns: how long the page was unmapped
--   unmap_to_flush_ns  BIGINT   (ns)       from the unmap to the flush covering the page (stale hits possible)
--   stalls             BIGINT   (accesses) accesses that waited on this page's migration entry
--   stall_ns           BIGINT   (ns)       their total wait
--   max_stall_ns       BIGINT   (ns)       the longest of them; NULL without stalls

-- Every column of page_stall, in no particular order: page_stall_summary and
-- page_stall_by_position read this, since sorting every migrated page costs more than they do.
CREATE VIEW _page_stall_rows AS
WITH by_call AS (
    -- A stall that names its call belongs to the page's rows of that call.
    SELECT
        run, trace, policy, pid, vpn, req_id,
        count(stall_ns) AS stalls,
        sum(stall_ns) AS stall_ns,
        max(stall_ns) AS max_stall_ns
    FROM stalls
    WHERE req_id IS NOT NULL
    GROUP BY run, trace, policy, pid, vpn, req_id
),
windows AS (
    -- Any other stall belongs to the rows whose window contains it: the windows of rows without
    -- a req_id (any stall of the page may be theirs) and of pages with stalls without one.
    -- Rows alike in these columns get the same stalls, so each window is counted once.
    SELECT DISTINCT
        m.run, m.trace, m.policy, m.pid, m.vpn, m.unmap_ns, m.remap_ns,
        m.req_id IS NULL AS any_stall
    FROM migrations AS m
    WHERE m.req_id IS NULL OR EXISTS (
        SELECT 1 FROM stalls AS s
        WHERE s.req_id IS NULL AND s.run = m.run AND s.trace IS NOT DISTINCT FROM m.trace
            AND s.policy = m.policy AND s.pid = m.pid AND s.vpn = m.vpn
    )
),
in_window AS (
    SELECT
        w.run, w.trace, w.policy, w.pid, w.vpn, w.unmap_ns, w.remap_ns, w.any_stall,
        count(s.stall_ns) AS stalls,
        sum(s.stall_ns) AS stall_ns,
        max(s.stall_ns) AS max_stall_ns
    FROM windows AS w
    JOIN stalls AS s
        ON s.run = w.run AND s.trace IS NOT DISTINCT FROM w.trace AND s.policy = w.policy
        AND s.pid = w.pid AND s.vpn = w.vpn
        AND (s.req_id IS NULL OR w.any_stall)
        AND s.ts_ns BETWEEN w.unmap_ns AND w.remap_ns
    GROUP BY w.run, w.trace, w.policy, w.pid, w.vpn, w.unmap_ns, w.remap_ns, w.any_stall
)
SELECT
    m.run::VARCHAR AS run,
    m.trace::VARCHAR AS trace,
    m.policy::VARCHAR AS policy,
    m.req_id::BIGINT AS req_id,
    m.batch_id::BIGINT AS batch_id,
    m.cpu::INTEGER AS cpu,
    m.pid::INTEGER AS pid,
    m.vpn::BIGINT AS vpn,
    m.pos_in_batch::INTEGER AS pos_in_batch,
    m.status::VARCHAR AS status,
    m.unmap_ns::BIGINT AS unmap_ns,
    m.remap_ns::BIGINT AS remap_ns,
    (m.remap_ns - m.unmap_ns)::BIGINT AS window_ns,
    (m.flush_ns - m.unmap_ns)::BIGINT AS unmap_to_flush_ns,
    (coalesce(c.stalls, 0) + coalesce(w.stalls, 0))::BIGINT AS stalls,
    (coalesce(c.stall_ns, 0) + coalesce(w.stall_ns, 0))::BIGINT AS stall_ns,
    greatest(c.max_stall_ns, w.max_stall_ns)::BIGINT AS max_stall_ns
FROM migrations AS m
LEFT JOIN by_call AS c
    ON c.run = m.run AND c.trace IS NOT DISTINCT FROM m.trace AND c.policy = m.policy
    AND c.pid = m.pid AND c.vpn = m.vpn AND c.req_id = m.req_id
LEFT JOIN in_window AS w
    ON w.run = m.run AND w.trace IS NOT DISTINCT FROM m.trace AND w.policy = m.policy
    AND w.pid = m.pid AND w.vpn = m.vpn AND w.unmap_ns = m.unmap_ns AND w.remap_ns = m.remap_ns
    AND w.any_stall = (m.req_id IS NULL);

CREATE VIEW page_stall AS
SELECT *
FROM _page_stall_rows
ORDER BY run, trace NULLS FIRST, policy, req_id NULLS LAST, batch_id NULLS LAST,
    pos_in_batch NULLS LAST, unmap_ns NULLS LAST, pid, vpn;

-- page_stall_summary: Distribution of unmapped windows and of stalls (p50, p90, p99, max) per run and policy
--
-- Two distributions: how long migrated pages stayed unmapped (their windows), and how long each
-- access that faulted on a migration entry waited. Batching trades the second for fewer IPIs:
-- a larger batch keeps pages unmapped longer, which is why the kernel caps it at 512 pages.
-- Percentiles are nearest-rank (quantile_disc): the smallest value with at least that share of
-- the values at or below it, so every percentile is an observed value.
--
-- Stalls are observed by a replay of the accesses, or in a capture of the page faults: a
-- measured run without one (see _stalls_observed) has NULL stalled_pages, stalls and stall_ns,
-- not 0.
--
-- Reads: migrations, _page_stall_rows, stalls, _policies, _stalls_observed.
--
-- Columns:
--   run             VARCHAR             run directory, as given to the loader
--   trace           VARCHAR             trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy          VARCHAR             migration policy (policy=<name>/)
--   pages           BIGINT   (pages)    pages migrated
--   window_p50_ns   BIGINT   (ns)       median unmapped window of the migrated pages
--   window_p90_ns   BIGINT   (ns)       90th percentile window
--   window_p99_ns   BIGINT   (ns)       99th percentile window
--   window_max_ns   BIGINT   (ns)       longest window
--   stalled_pages   BIGINT   (pages)    page attempts (rows of page_stall) that stalled at least one access; NULL when unknown (measured without faults)
--   stalls          BIGINT   (accesses) accesses that waited on a migration entry; NULL when unknown (measured without faults)
--   stall_ns        BIGINT   (ns)       their total wait; NULL when unknown (measured without faults)
--   stall_p50_ns    BIGINT   (ns)       median wait of a stalled access; NULL without stalls
--   stall_p90_ns    BIGINT   (ns)       90th percentile wait
--   stall_p99_ns    BIGINT   (ns)       99th percentile wait
--   stall_max_ns    BIGINT   (ns)       longest wait

-- A window is remap_ns - unmap_ns, as page_stall has it; read from migrations itself, since
-- page_stall's rows match stalls to pages, which the windows do not need.
CREATE VIEW _page_stall_summary_windows AS
SELECT
    run, trace, policy,
    count(*) FILTER (WHERE status = 'migrated') AS pages,
    -- one list of quantiles sorts the windows once
    quantile_disc(remap_ns - unmap_ns, [0.5, 0.9, 0.99]) FILTER (WHERE status = 'migrated')
        AS window_q,
    max(remap_ns - unmap_ns) FILTER (WHERE status = 'migrated') AS window_max_ns
FROM migrations
GROUP BY run, trace, policy;

-- Which page attempts an access stalled on: page_stall's rows, which match every stall to its
-- page's windows (a join over every migration row), so only page_stall_summary reads it.
CREATE VIEW _page_stall_summary_stalled_pages AS
SELECT run, trace, policy, count(*) FILTER (WHERE stalls > 0) AS stalled_pages
FROM _page_stall_rows
GROUP BY run, trace, policy;

CREATE VIEW _page_stall_summary_stalls AS
SELECT
    run, trace, policy,
    count(*) AS stalls,
    sum(stall_ns) AS stall_ns,
    quantile_disc(stall_ns, [0.5, 0.9, 0.99]) AS stall_q,
    max(stall_ns) AS stall_max_ns
FROM stalls
GROUP BY run, trace, policy;

-- Every column but stalled_pages: what run.json's summary and policy_compare read, without the
-- join that matches stalls to pages.
CREATE VIEW _page_stall_summary_distributions AS
SELECT
    p.run, p.trace, p.policy,
    x.run IS NOT NULL AS stalls_observed,
    coalesce(w.pages, 0)::BIGINT AS pages,
    w.window_q[1]::BIGINT AS window_p50_ns,
    w.window_q[2]::BIGINT AS window_p90_ns,
    w.window_q[3]::BIGINT AS window_p99_ns,
    w.window_max_ns::BIGINT AS window_max_ns,
    (CASE WHEN x.run IS NOT NULL THEN coalesce(s.stalls, 0) END)::BIGINT AS stalls,
    (CASE WHEN x.run IS NOT NULL THEN coalesce(s.stall_ns, 0) END)::BIGINT AS stall_ns,
    s.stall_q[1]::BIGINT AS stall_p50_ns,
    s.stall_q[2]::BIGINT AS stall_p90_ns,
    s.stall_q[3]::BIGINT AS stall_p99_ns,
    s.stall_max_ns::BIGINT AS stall_max_ns
FROM _policies AS p
LEFT JOIN _stalls_observed AS x
    ON x.run = p.run AND x.trace IS NOT DISTINCT FROM p.trace AND x.policy = p.policy
LEFT JOIN _page_stall_summary_windows AS w
    ON w.run = p.run AND w.trace IS NOT DISTINCT FROM p.trace AND w.policy = p.policy
LEFT JOIN _page_stall_summary_stalls AS s
    ON s.run = p.run AND s.trace IS NOT DISTINCT FROM p.trace AND s.policy = p.policy;

CREATE VIEW page_stall_summary AS
SELECT
    d.run::VARCHAR AS run,
    d.trace::VARCHAR AS trace,
    d.policy::VARCHAR AS policy,
    d.pages,
    d.window_p50_ns,
    d.window_p90_ns,
    d.window_p99_ns,
    d.window_max_ns,
    (CASE WHEN d.stalls_observed THEN coalesce(sp.stalled_pages, 0) END)::BIGINT AS stalled_pages,
    d.stalls,
    d.stall_ns,
    d.stall_p50_ns,
    d.stall_p90_ns,
    d.stall_p99_ns,
    d.stall_max_ns
FROM _page_stall_summary_distributions AS d
LEFT JOIN _page_stall_summary_stalled_pages AS sp
    ON sp.run = d.run AND sp.trace IS NOT DISTINCT FROM d.trace AND sp.policy = d.policy
ORDER BY d.run, d.trace NULLS FIRST, d.policy;

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

-- page_stall_by_position: Unmapped window and stalls versus a page's position in its batch
--
-- In a batch, page i waits through the unmap of the whole batch, the flush and the moves of pages
-- 0..i, so its window grows with its position; this is the latency cost that capped the batch at
-- 512 pages. One row per position (0-based, in unmap order) that occurs. A serial "batch" is a
-- whole migration call, whose pages each wait only for their own move: there the window does not
-- grow with the position. Only migrated pages count.
--
-- Reads: _page_stall_rows.
--
-- Columns:
--   run             VARCHAR             run directory, as given to the loader
--   trace           VARCHAR             trace id in a corpus (trace=<id>/), NULL outside corpora
--   policy          VARCHAR             migration policy (policy=<name>/)
--   pos_in_batch    INTEGER             position in the batch, from 0; NULL where not recorded
--   pages           BIGINT   (pages)    pages migrated at this position
--   window_mean_ns  DOUBLE   (ns)       mean unmapped window
--   window_max_ns   BIGINT   (ns)       longest unmapped window
--   stalled_pages   BIGINT   (pages)    pages that stalled at least one access
--   stalls          BIGINT   (accesses) accesses that waited on these pages
--   stall_ns        BIGINT   (ns)       their total wait
--   stall_mean_ns   DOUBLE   (ns)       mean wait of a stalled access; NULL without stalls
--   stall_max_ns    BIGINT   (ns)       longest wait; NULL without stalls

CREATE VIEW page_stall_by_position AS
SELECT
    run::VARCHAR AS run,
    trace::VARCHAR AS trace,
    policy::VARCHAR AS policy,
    pos_in_batch::INTEGER AS pos_in_batch,
    count(*)::BIGINT AS pages,
    avg(window_ns)::DOUBLE AS window_mean_ns,
    max(window_ns)::BIGINT AS window_max_ns,
    count(*) FILTER (WHERE stalls > 0)::BIGINT AS stalled_pages,
    sum(stalls)::BIGINT AS stalls,
    sum(stall_ns)::BIGINT AS stall_ns,
    (sum(stall_ns) / nullif(sum(stalls), 0))::DOUBLE AS stall_mean_ns,
    max(max_stall_ns)::BIGINT AS stall_max_ns
FROM _page_stall_rows
WHERE status = 'migrated'
GROUP BY run, trace, policy, pos_in_batch
ORDER BY run, trace NULLS FIRST, policy, pos_in_batch NULLS LAST;

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
