# Sourced by the benchmark scripts whose README figures were measured with the training defaults
# before 2026-12-03 (8 time bins, 512 members; the length each script names itself), so their
# rows do not move with today's defaults (4 bins, 1,024 members, 3,000 generations).
old_defaults=(--set data.num_time_bins=8 --population-size 512)
