"""First start: create the admin user and an admin API key, write it to `{home}/admin.key` (mode 0600).

The store decides what a first start is: the admin user has never had a key. So restarts (and several
replicas starting together) do not mint new keys, and the server never reads the file: it keeps only the
key's hash, in the store. The file is the operator's copy, for the CLI and the SDK client; it may be moved
somewhere safer or deleted once the key is kept elsewhere. An operator who lost every admin key mints a new
one with `rayweave keys create --admin` (`serve.cli.keys_cmd`), which needs access to the store.

The file is written to a temporary file created with mode 0600 in the same folder, then renamed into place:
it is never readable by other users of the machine, not even for a moment, and never half-written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.store import Store

ADMIN_USER = "admin"
KEY_FILE = "admin.key"

_log = logging.getLogger("rayweave.serve")


def admin_key_path(home: Path) -> Path:
    """Where the admin key is written."""
    return Path(home) / KEY_FILE


def ensure_admin_key(store: Store, home: Path) -> str | None:
    """Create the admin key on first start; returns the new secret, or None when this is not a first start.

    An existing key file that others may read is made private (0600) on every start.
    """
    path = admin_key_path(home)
    tighten_key_file(path)
    try:
        user = store.users.get_by_username(ADMIN_USER)
    except KeyError:
        try:
            user = store.users.create(ADMIN_USER, display_name="rayweave administrator", is_admin=True)
        except ValueError:  # another replica created it a moment ago
            user = store.users.get_by_username(ADMIN_USER)
    if store.api_keys.list(user_id=user.id, include_revoked=True):
        return None
    _key, secret = store.api_keys.create(user.id, name="admin (first start)", scopes=["admin"])
    write_key_file(path, secret)
    return secret


def write_key_file(path: Path, secret: str) -> None:
    """Write `secret` to `path` readable by its owner only, atomically (replacing a file of an older store)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600 whatever the umask, so the key is private from its first byte.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def tighten_key_file(path: Path) -> None:
    """Make an existing key file readable by its owner only (e.g. one copied with looser permissions)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        _log.warning("%s was readable by others (mode %o); made it private (0600)", path, mode)
        os.chmod(path, 0o600)
