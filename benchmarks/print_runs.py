"""Print validation and test accuracy (and seconds) of every run folder's summary.json given."""
import json
import sys

for path in sys.argv[1:]:
    summary = json.load(open(path))
    print(path, "validation", summary["best_validation_accuracy"], "test", summary["test_accuracy"], round(summary["wall_time_s"]))
