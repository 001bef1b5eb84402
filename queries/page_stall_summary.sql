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
