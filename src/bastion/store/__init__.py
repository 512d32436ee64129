"""Storage: SQLAlchemy tables, the engine factory, migrations and repositories.

Repositories build queries and never commit; the caller owns the transaction.
"""

from bastion.store.database import Database

__all__ = ["Database"]
