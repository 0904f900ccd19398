"""What changed and how it looks: normalising, nbdime diffs, snapshots, the review document."""
