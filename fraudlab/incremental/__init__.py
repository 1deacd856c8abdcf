"""The incremental pipeline: features for new rows and the rows they change, late rows marked, a watched folder.

Modules: ``features`` (which rows change, the history they read, one DELETE + INSERT), ``arrivals`` (late and
beyond-the-horizon rows of each load), ``watch`` (files landing in a folder, each loaded exactly once).
"""
from fraudlab.incremental.arrivals import ArrivalReport, late_share_by_day, record_arrivals
from fraudlab.incremental.features import IncrementalReport, PlanChanged, can_update, update_features

__all__ = ["ArrivalReport", "IncrementalReport", "PlanChanged", "can_update", "late_share_by_day",
           "record_arrivals", "update_features"]
