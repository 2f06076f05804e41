"""The Dagster code location: every definition in the ``defs/`` folder.

``defs/`` is split by concern -- ``assets/`` (one module per stage), ``checks.py``, ``jobs.py``,
``schedules.py``, ``sensors.py``, ``resources.py`` -- and loaded whole with ``dg.load_defs``.
``defs`` is the embedded default (one machine, in-process executor);
:mod:`forecasting_assets.definitions_scaleout` swaps in the store-partitioned ``features`` and
a distributed executor.
"""

import dagster as dg

import forecasting_assets.defs as defs_folder

defs = dg.Definitions.merge(
    dg.load_defs(defs_root=defs_folder),
    dg.Definitions(executor=dg.in_process_executor),
)
