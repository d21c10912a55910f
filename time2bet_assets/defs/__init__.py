"""Dagster definitions, one folder per area of the pipeline, each with the same file names."""
