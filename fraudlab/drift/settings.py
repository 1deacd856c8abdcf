"""Drift thresholds and defaults, each with where its value comes from."""
from __future__ import annotations

ID_COLUMNS = ("customer_id", "card_id", "device_id", "ip", "email", "merchant_id")
SKIP_COLUMNS = ("transaction_id", "ts", "ingest_id", "is_fraud", "label_ts")
NUM_BINS = 100
SMALL_SAMPLE = 1_000          # at or below: KS / chi-squared p-value decides (the common default)
ALPHA = 0.05
DISTANCE_THRESHOLD = 0.1      # normalised Wasserstein / Jensen-Shannon (the common default for large samples)
SMALL_EFFECT = 0.05           # minimum effect size that must accompany a small-sample p-value
PSI_WARN, PSI_DRIFT = 0.1, 0.25
MISSING_THRESHOLD = 0.05      # absolute change in the missing rate
UNSEEN_THRESHOLD = 0.01       # share of current rows with categories the reference never had
MAX_CATEGORIES = 200          # more distinct values than this: top-k + "(other)"
TOP_K = 30
GRID_SAMPLE = 200_000     # rows sampled from the reference to place the histogram grids
MIN_PERIOD_ROWS = 30
DOMAIN_SAMPLE = 10_000
DOMAIN_AUC = 0.55
PCA_VARIANCE = 0.65
PERF_DROP = 0.25              # relative drop of weekly PR-AUC / recall that counts as performance drift
LABEL_MIX_THRESHOLD = 0.3       # fraud mix is clustered (compromised merchants, rings): needs a large move
LABEL_MIX_GROWTH = 0.15          # ... and one value taking at least 15 more points of the frauds
FRAUD_RATE_CHANGE = 0.3
DATASET_SHARE = 0.5           # weighted share of drifted columns that makes the whole dataset drifted
PROFILE_TABLE = "drift_profiles"
OTHER, NEW, NULL = "(other)", "(new)", "(null)"

RECOMMEND = {
    "pipeline": "investigate the pipeline: fix the source before using this data (do not retrain on it)",
    "retrain": "retrain on recent data and promote through the promotion guard",
    "watch": "watch: small or unimportant change, re-check with the next run",
}
