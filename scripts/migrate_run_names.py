"""Rename a results folder's records and checkpoints to the names that carry the dataset's fingerprint.

    python scripts/migrate_run_names.py [RESULTS_DIR]     (default: the committed study, results/)
"""

import sys

from repro.study.store import DEFAULT_RESULTS_DIR, migrate_names

for old, new in migrate_names(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_RESULTS_DIR):
    print(f"{old} -> {new}")
