"""The server's database: SQLAlchemy models, engines and Alembic migrations."""
