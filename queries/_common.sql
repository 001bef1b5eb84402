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
