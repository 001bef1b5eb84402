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

CREATE VIEW page_stall AS
WITH attempts AS (
    -- Numbers the rows so that two identical rows stay two pages after the grouping below.
    SELECT row_number() OVER () AS attempt, * FROM migrations
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
    count(s.stall_ns)::BIGINT AS stalls,
    coalesce(sum(s.stall_ns), 0)::BIGINT AS stall_ns,
    max(s.stall_ns)::BIGINT AS max_stall_ns
FROM attempts AS m
LEFT JOIN stalls AS s
    ON s.run = m.run AND s.trace IS NOT DISTINCT FROM m.trace AND s.policy = m.policy
    AND s.pid = m.pid AND s.vpn = m.vpn
    AND CASE
        WHEN s.req_id IS NOT NULL AND m.req_id IS NOT NULL THEN s.req_id = m.req_id
        ELSE s.ts_ns BETWEEN m.unmap_ns AND m.remap_ns
    END
GROUP BY m.attempt, m.run, m.trace, m.policy, m.req_id, m.batch_id, m.cpu, m.pid, m.vpn,
    m.pos_in_batch, m.status, m.unmap_ns, m.remap_ns, m.flush_ns
ORDER BY run, trace NULLS FIRST, policy, req_id NULLS LAST, batch_id NULLS LAST,
    pos_in_batch NULLS LAST, unmap_ns NULLS LAST, pid, vpn;
