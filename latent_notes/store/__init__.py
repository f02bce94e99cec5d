"""Where trained models live: the checkpoint format, the cache of checkpoints, published weights."""
