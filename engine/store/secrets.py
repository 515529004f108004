"""Secrets as stored: sealed values (`engine.secrets.envelope`) by owner and name, with versions.

The repository never sees a value in the clear: callers (`engine.secrets.service`) seal before `put` and open
after `get`. Listing returns the records, whose only sensitive fields are ciphertexts; the API shows names and
metadata only.
"""

from __future__ import annotations

import builtins

import sqlalchemy as sa
from sqlmodel import col, select

from engine.store.base import Repository
from engine.store.columns import new_id, utcnow
from engine.store.errors import NotFoundError
from engine.store.models import Secret


class SecretRepository(Repository):
    """Sealed secrets of owners."""

    def put(
        self,
        owner: str,
        name: str,
        *,
        ciphertext: str,
        wrapped_key: str,
        key_id: str,
        description: str | None = None,
        actor: str = "",
    ) -> Secret:
        """Store a new secret (version 1) or a new value of an existing one (its version + 1); `description`
        None keeps the stored one. Two concurrent puts of one name both land, one after the other."""
        for attempt in range(2):
            try:
                with self.session() as session:
                    now = utcnow()
                    query = select(Secret).where(Secret.owner == owner, Secret.name == name).with_for_update()
                    row = session.exec(query).first()
                    if row is None:
                        row = Secret(
                            id=new_id(),
                            owner=owner,
                            name=name,
                            description=description or "",
                            ciphertext=ciphertext,
                            wrapped_key=wrapped_key,
                            key_id=key_id,
                            created_at=now,
                            updated_at=now,
                            created_by=actor,
                            updated_by=actor,
                        )
                        session.add(row)
                    else:
                        row.ciphertext, row.wrapped_key, row.key_id = ciphertext, wrapped_key, key_id
                        row.version += 1
                        row.updated_at, row.updated_by = now, actor
                        if description is not None:
                            row.description = description
                    session.flush()
                    return row
            except sa.exc.IntegrityError:
                if attempt:  # lost the creation race twice: cannot happen unless the row keeps vanishing
                    raise
        raise AssertionError("unreachable")

    def get(self, owner: str, name: str) -> Secret:
        """One sealed secret; raises `NotFoundError` naming it."""
        with self.reading() as session:
            row = session.exec(select(Secret).where(Secret.owner == owner, Secret.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"secret {name!r} does not exist for {owner!r}; create it with POST /v1/secrets or "
                "`rayweave secrets set`"
            )
        return row

    def list(self, *, owner: str | None = None) -> builtins.list[Secret]:
        """Sealed secrets of one owner (every owner with None), by owner and name."""
        query = select(Secret)
        if owner is not None:
            query = query.where(Secret.owner == owner)
        with self.reading() as session:
            return builtins.list(session.exec(query.order_by(col(Secret.owner), col(Secret.name))))

    def delete(self, owner: str, name: str) -> None:
        """Remove a secret; raises `NotFoundError` when there is none."""
        with self.session() as session:
            result = session.execute(
                sa.delete(Secret).where(col(Secret.owner) == owner, col(Secret.name) == name)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFoundError(f"secret {name!r} does not exist for {owner!r}")

    def reseal(self, secret_id: str, *, version: int, ciphertext: str, wrapped_key: str, key_id: str) -> bool:
        """Replace the sealed form of one version of a secret (a key rotation: same value, new keys); False
        when the secret changed or vanished since it was read (the caller reads it again)."""
        with self.session() as session:
            result = session.execute(
                sa.update(Secret)
                .where(col(Secret.id) == secret_id, col(Secret.version) == version)
                .values(ciphertext=ciphertext, wrapped_key=wrapped_key, key_id=key_id)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
