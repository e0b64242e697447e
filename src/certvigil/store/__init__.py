"""The inventory and history store: SQLAlchemy models, migrations, queries, the outbox."""
