"""What the chapters measure and draw with trained models: codes, probes, metrics, plots."""
