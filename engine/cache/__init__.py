"""Result cache of node outputs, keyed by cache keys: in-process LRU, Ray object store, durable disk store.

`engine.cache.result_cache.ResultCache` combines the levels; each level is its own small module. Nothing is
held at module level: a cache is an explicit object its owner (an executor, the CLI) creates and passes on.
"""
