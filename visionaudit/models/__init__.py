"""Layer 3, models: specs, loading, safe checkpoints, batch sizes, inference and the clean-logit cache,
the first convolution, and the random-init control architectures."""
