"""Text to vectors, and where vectors live: embedders, the embedding cache, the Qdrant store, kNN graphs."""
