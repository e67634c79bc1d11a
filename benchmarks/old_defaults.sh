# Sourced by the benchmark scripts whose docs/results.md figures were measured with the training defaults
# before the current ones (8 time bins, 512 members, rank 4, sigma 0.05; the length each script names itself), so their
# rows do not move with the defaults of today.
old_defaults=(--set data.num_time_bins=8 --population-size 512 --rank 4 --sigma 0.05)
