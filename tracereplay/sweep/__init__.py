"""Sweep a grid of configuration values over traces and policies, on the batch machinery.

``run_sweep(traces, out, axes)`` replays every trace under every policy at every point of the
grid of the varied keys (any key ``--set`` takes), into::

    OUT/<column>=<value>/.../trace=<id>/policy=<name>/{flushes,migrations,batches,...}.parquet
    OUT/sweep.json          the grid: keys, their partition columns and values, the points
    OUT/_failures.parquet   one row per (point, trace, policy) that failed

Each point's directory is a batch results directory (:mod:`tracereplay.batch`): results are
committed whole, a rerun skips complete ones, the work of all points runs on one executor
(local processes or Dask). Each varied key is a hive partition column (``migrate.batch_size``
-> ``migrate_batch_size``; :func:`column_name`), so DuckDB reading
``OUT/**/batches.parquet`` with ``hive_partitioning = true`` has it as a column.

The modules: ``grid`` (axes, points, partition names, each point's profile), ``run``
(:func:`run_sweep`, ``sweep.json``, the failure table).
"""

from __future__ import annotations

from tracereplay.sweep.grid import Axis, Point, column_name, grid, parse_vary, point_profiles
from tracereplay.sweep.run import SWEEP_JSON, SweepSummary, read_sweep, run_sweep

__all__ = ["SWEEP_JSON", "Axis", "Point", "SweepSummary", "column_name", "grid", "parse_vary",
           "point_profiles", "read_sweep", "run_sweep"]
