"""The versioned HTTP API. Each version is a package (`serve.api.v1`) with its own router, mounted under its
prefix by `serve.app`, so `/v2` can be added beside `/v1` without touching it."""
