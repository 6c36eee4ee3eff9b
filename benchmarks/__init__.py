"""The warmth-accuracy benchmark, speed benchmarks, and the end-to-end reproduction."""
