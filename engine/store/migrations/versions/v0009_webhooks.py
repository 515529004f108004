"""Outbound webhooks (issue 19): `webhook_subscriptions`, `webhook_deliveries`, and a partial index on the
creation time of the events webhooks may subscribe to, which the delivery worker reads in time order.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:00:00.000000

The values are frozen copies of `engine.store.models.NOTIFIED_EVENT_TYPES` and `DeliveryStatus` at the time of
this revision (see 0003).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from engine.store.migrations.portable import LONG_TEXT, TIMESTAMP

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFIED_EVENT_TYPES = (
    "run.started",
    "run.succeeded",
    "run.failed",
    "run.cancelled",
    "node.failed",
    "node.retrying",
    "anomaly.detected",
)
DELIVERY_STATUSES = ("scheduled", "delivered", "dead")
INDEX = "ix_events_notified_created"
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def condition(column: str, values: Sequence[str]) -> str:
    """The portable SQL of a constraint or index predicate (SQLite, PostgreSQL and MariaDB read it alike)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    """Apply this migration: the two webhook tables and the events' partial index."""
    when = TIMESTAMP
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("event_types", JSON_TYPE, nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret_ciphertext", LONG_TEXT, nullable=False),
        sa.Column("secret_wrapped_key", sa.String(length=200), nullable=False),
        sa.Column("secret_key_id", sa.String(length=64), nullable=False),
        sa.Column("cursor_at", when, nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index("ix_webhook_subscriptions_owner", "webhook_subscriptions", ["owner"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("body", JSON_TYPE, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when, nullable=True),
        sa.Column("lease_until", when, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", LONG_TEXT, nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("delivered_at", when, nullable=True),
        sa.CheckConstraint(condition("status", DELIVERY_STATUSES), name=op.f("ck_webhook_deliveries_status")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("subscription_id", "run_id", "seq", name="uq_webhook_deliveries_event"),
    )
    op.create_index(
        "ix_webhook_deliveries_status_next", "webhook_deliveries", ["status", "next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_webhook_deliveries_subscription_created",
        "webhook_deliveries",
        ["subscription_id", "created_at"],
        unique=False,
    )
    where = sa.text(condition("type", NOTIFIED_EVENT_TYPES))
    op.create_index(INDEX, "events", ["created_at"], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    """Revert this migration (subscriptions and their deliveries are lost)."""
    op.drop_index(INDEX, table_name="events")
    op.drop_index("ix_webhook_deliveries_subscription_created", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_status_next", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_subscriptions_owner", table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
