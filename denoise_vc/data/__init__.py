"""Data: generated and real sources, mixing with noise, datasets."""
