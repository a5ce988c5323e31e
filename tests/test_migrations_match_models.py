"""Each service's migrations build exactly the tables its models describe.

Models and migrations are written separately (as alembic expects); this keeps them
from drifting: alembic's own comparison must find nothing to change.
"""
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.dispatch import models as dispatch_models
from services.identity import models as identity_models
from services.intake import models as intake_models
from services.integration365 import models as integration365_models
from services.rewards import models as rewards_models

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("models", [identity_models, intake_models, dispatch_models,
                                    integration365_models, rewards_models],
                         ids=["identity", "intake", "dispatch", "integration365", "rewards"])
def test_the_migrated_schema_matches_the_models(stack, models):
    schema = models.metadata.schema
    with stack.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "include_schemas": True,
            "include_name": lambda name, type_, parent: (
                name == schema if type_ == "schema" else name != "alembic_version"),
            "compare_type": True,
        })
        diff = compare_metadata(context, models.metadata)
    # Indexes that exist only for queries (not declared on the models) are allowed.
    diff = [d for d in diff if not (isinstance(d, tuple) and d[0] == "remove_index")]
    assert diff == [], f"{schema}: migrations and models differ: {diff}"
    assert sa.inspect(stack.engine).has_table("outbox", schema=schema)
