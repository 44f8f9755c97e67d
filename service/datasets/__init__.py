"""Datasets: readers per format, validation, the catalog and ingest."""
