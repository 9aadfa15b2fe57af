from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from rxvault.server._db import check_schema, current_revision, head_revision
from rxvault.server._models import Base


def test_migrated_database_is_at_head(engine: sa.Engine) -> None:
    assert current_revision(engine) == head_revision()
    check_schema(engine)


def test_migrations_match_the_models(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
