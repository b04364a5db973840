"""Voice conversion around the wGMM acoustic model: parallel data, features, training data, pipeline, metrics."""
