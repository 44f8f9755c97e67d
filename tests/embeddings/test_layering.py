"""The embeddings layer stands on its own: importing it loads nothing from `service`, and the service's
error tree is built on the embeddings layer's own classes, so either layer's errors map to the same status."""

from __future__ import annotations

import subprocess
import sys

from embeddings import errors as layer
from service import errors as tree


def test_embeddings_imports_nothing_from_service():
    code = ("import sys, embeddings.store, embeddings.embedder, embeddings.neighbors, embeddings.cache\n"
            "print(sorted(m for m in sys.modules if m == 'service' or m.startswith('service.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_service_tree_is_built_on_the_layers_errors():
    for name in ("DataDebuggerError", "NotFound", "InvalidInput", "Conflict", "Unavailable", "StoreLocked",
                 "IntegrityError"):
        assert getattr(tree, name) is getattr(layer, name)
    assert tree.status_of(layer.NotFound("x")) == (404, "not_found")
    assert tree.status_of(layer.Unavailable("x")) == (503, "unavailable")
    assert tree.status_of(layer.StoreLocked("x")) == (503, "unavailable")  # a locked store is unavailable
    assert tree.status_of(tree.InvalidRecords("f", [])) == (422, "invalid_input")
