"""The debugger's analyses: plug-ins over one shared context (kNN graph, probabilities), run by the runner."""
