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
