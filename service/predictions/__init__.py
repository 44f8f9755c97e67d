"""Predictions: train and version the intent classifier, serve it over HTTP, enrich datasets through it."""
