"""Building the dataset variants and releases: builders, the frozen recipe, the staged rebuild, verify."""
