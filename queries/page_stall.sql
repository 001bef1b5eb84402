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
