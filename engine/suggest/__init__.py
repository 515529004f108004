"""Node suggestions: which node types to add next to a (partial) workflow, from a selected port, a text query,
or both (issue 20). Pure: the catalog, a workflow document, counts learned from stored workflows
(`History`) and a text index go in; ranked suggestions come out. `engine.suggest.service` reads the store.
"""

from engine.suggest.anchor import Anchor, find_anchor
from engine.suggest.compat import Fit, port_fit
from engine.suggest.errors import SuggestError, UnknownNodeError, UnknownPortError
from engine.suggest.history import History, workflow_edges
from engine.suggest.rank import Suggestion, Suggestions, suggest
from engine.suggest.text import LexicalIndex, build_index, embeddings_available

__all__ = [
    "Anchor",
    "Fit",
    "History",
    "LexicalIndex",
    "SuggestError",
    "Suggestion",
    "Suggestions",
    "UnknownNodeError",
    "UnknownPortError",
    "build_index",
    "embeddings_available",
    "find_anchor",
    "port_fit",
    "suggest",
    "workflow_edges",
]
