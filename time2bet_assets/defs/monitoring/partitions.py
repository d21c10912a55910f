"""Partitions of the monitoring area.

- ``ledger_days``: the prediction ledger's segment folders are UTC days of the records' wall clock
  (``<ledger_dir>/<yyyy-mm-dd>/``); today is a partition too (``end_offset=1``), so the day being written can be
  loaded (and anchored) before it ends, then loaded again when complete.
- ``kickoff_weeks``: Monday to Sunday by kickoff date (a weekend's matches stay in one week), from 2019-07-01, the
  Monday before the 2019-20 season (a replay of its real data) and well before the sample site's 2020-21..2024-25.
  A week is a partition once it is over.
"""

import dagster as dg

LEDGER_START = "2025-01-01"          # before any ledger segment (the ledger came with the platform's 2026 release)
KICKOFF_WEEKS_START = "2019-07-01"   # a Monday

ledger_days = dg.DailyPartitionsDefinition(start_date=LEDGER_START, end_offset=1)
kickoff_weeks = dg.WeeklyPartitionsDefinition(start_date=KICKOFF_WEEKS_START, day_offset=1)
