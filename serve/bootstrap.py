"""First start: create the admin user and an admin API key, write it to `{home}/admin.key` (mode 0600).

The key is created only when no admin key file exists and no admin user has a live key, so restarts (and
several replicas starting together) do not mint new keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.store import Store

ADMIN_USER = "admin"
KEY_FILE = "admin.key"


def admin_key_path(home: Path) -> Path:
    """Where the admin key is written."""
    return Path(home) / KEY_FILE


def ensure_admin_key(store: Store, home: Path) -> str | None:
    """Create the admin key on first start; returns the new secret, or None when one exists already."""
    path = admin_key_path(home)
    if path.exists():
        return None
    try:
        user = store.users.get_by_username(ADMIN_USER)
    except KeyError:
        try:
            user = store.users.create(ADMIN_USER, display_name="rayweave administrator", is_admin=True)
        except ValueError:  # another replica created it a moment ago
            user = store.users.get_by_username(ADMIN_USER)
    if store.api_keys.list(user_id=user.id):
        return None
    _key, secret = store.api_keys.create(user.id, name="admin (first start)", scopes=["admin"])
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL + 0600: never overwrite an existing file, never expose the key to other users of the machine.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret
