"""Storage: baselines (sorted JSON with provenance), the prediction cache, and the run history."""
