"""Market data: the NYSE calendar, the immutable snapshot a sync builds from, the sample market."""
