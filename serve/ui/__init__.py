"""The web UI: a static bundle built from the TypeScript sources in `serve/ui/web` (vite) into `serve/ui/dist`,
served by the API itself under `/ui` (`serve.ui.routes`), with the API key sign-in that opens a browser session.

`make ui` builds the bundle (`npm ci` from the committed lock file, then `npm run build`); the Python package
ships `serve/ui/dist` as package data. See docs/guides/web-ui.md and docs/adr/017-web-ui-build-and-serving.md.
"""

from __future__ import annotations

from serve.ui.routes import BUNDLE_DIR, mount_ui

__all__ = ["BUNDLE_DIR", "mount_ui"]
