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
