"""Files copied verbatim into export bundles (they must run without this package)."""
