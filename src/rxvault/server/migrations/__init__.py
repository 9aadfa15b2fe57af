"""The one Alembic migration history, for SQLite, PostgreSQL and MariaDB/MySQL."""
