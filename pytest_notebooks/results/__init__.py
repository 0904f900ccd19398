"""The results file: recording it on the controller, merging shards, selecting what runs."""
