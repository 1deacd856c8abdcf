"""Drift reports: what moved between a reference window and a current window, how much, since when, what to do.

Everything heavy runs in DuckDB: one scan of a window per source table computes, per day (or week), binned
histograms of every numeric column on a grid frozen from the reference, counts per category, null counts and
tail sums. Window-level tests are then computed from those small arrays, never from the rows:

- numeric: Kolmogorov–Smirnov from the binned CDFs (p-value, asymptotic), Wasserstein distance normalised by the
  reference standard deviation, PSI on reference deciles;
- categorical: chi-squared, Jensen–Shannon distance (natural log, as scipy and Evidently), PSI with an explicit "new category" bucket;
- missing rate and unseen-category rate as signals of their own.

The test is chosen as the common open-source tools do (up to 1,000 rows: KS / chi-squared at p < 0.05; larger:
normalised Wasserstein / Jensen–Shannon at 0.1), with two guards they lack: a drift needs both a significant
p-value (Benjamini–Hochberg across every test of the report) and an effect size above the threshold, so huge
samples do not raise alarms for trivial differences. Thresholds can instead be learned from the spread of the
statistic across reference days (mean + 3σ).

The reference profile (grids, histograms, per-day baselines) is frozen in table ``drift_profiles`` and reused as
long as the reference rows are unchanged. Runs are saved in ``drift_runs``.

Modules, from calculation to result: ``settings`` (thresholds) → ``windows`` / ``columns`` → ``grids`` / ``scans``
(one DuckDB pass per window) → ``profile`` (frozen reference) → ``stats`` (pure statistics) → ``per_column`` /
``timeline`` / ``multivariate`` / ``performance`` → ``report`` (the verdict) → ``runs`` (persistence). Charts live in
:mod:`fraudlab.charts.drift`.
"""
from fraudlab.drift.columns import ColumnSpec, monitored_columns
from fraudlab.drift.grids import Grid, grid_from_quantiles
from fraudlab.drift.profile import ReferenceProfile, clear_profiles, fit_reference, reference_profile
from fraudlab.drift.report import DriftReport, run_report
from fraudlab.drift.runs import compare_runs, list_runs, load_run, save_run
from fraudlab.drift.settings import DOMAIN_AUC, PROFILE_TABLE, RECOMMEND, SMALL_SAMPLE
from fraudlab.drift.stats import benjamini_hochberg, categorical_stats, numeric_stats
from fraudlab.drift.windows import Window, split_windows
from fraudlab.incremental.arrivals import late_share_by_day

__all__ = ["ColumnSpec", "DOMAIN_AUC", "DriftReport", "Grid", "PROFILE_TABLE", "RECOMMEND", "ReferenceProfile",
           "SMALL_SAMPLE", "Window", "benjamini_hochberg", "categorical_stats", "clear_profiles", "compare_runs",
           "fit_reference", "grid_from_quantiles", "late_share_by_day", "list_runs", "load_run", "monitored_columns", "numeric_stats",
           "reference_profile", "run_report", "save_run", "split_windows"]
