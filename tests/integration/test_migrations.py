"""Data migrations, run forwards and backwards on real rows."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from recommendations.models import Interaction
from recommendations.tracking import recording, storage
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("recommendations", "0004_operations")
AFTER = ("recommendations", "0006_namespace_client_event_ids")


def _latest() -> tuple[str, str]:
    """The app's newest migration: where every test after this one expects the schema."""
    (leaf,) = MigrationExecutor(connection).loader.graph.leaf_nodes("recommendations")
    return leaf


def _migrate(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return MigrationExecutor(connection).loader.project_state([target]).apps


def _ids() -> dict[str, str | None]:
    return dict(Interaction.objects.values_list("source", "client_event_id"))


def _record(user, visitor_id: str, client_event_id: str, source: str) -> None:
    """What the events endpoint does with a client's id after the migration."""
    item = Interaction.objects.values_list("item_id", flat=True).first()
    cid = recording.shopper_event_id(client_event_id, user.pk if user else None, visitor_id)
    row = recording.validate_event(
        "view", item, user=user, visitor_id=visitor_id, source=source, client_event_id=cid
    )
    storage.insert_rows([row])


def test_stored_client_event_ids_move_into_their_shoppers_namespaces():
    item, user = factories.product(), factories.user()
    try:
        old = _migrate(BEFORE).get_model("recommendations", "Interaction")
        for source, user_id, visitor_id, cid in [
            ("user's 1", user.pk, "", "1"),
            ("visitor's 7", None, "phone-aaaaaaaa", "7"),
            ("squatter", None, "phone-squatter", f"u{user.pk}/2"),  # the user's next id
            ("order", user.pk, "", "order:5:0"),
            ("no id", None, "phone-aaaaaaaa", None),
        ]:
            old.objects.create(
                source=source,
                user_id=user_id,
                visitor_id=visitor_id,
                item_id=item.pk,
                event="view",
                client_event_id=cid,
            )
        _migrate(AFTER)
        assert _ids() == {
            "user's 1": f"u{user.pk}/1",
            "visitor's 7": "vphone-aaaaaaaa/7",
            "squatter": f"vphone-squatter/u{user.pk}/2",
            "order": "order:5:0",
            "no id": None,
        }
        # The squatted id no longer blocks the user's next event; a retry is still caught;
        # the visitor may now use an id the user has used.
        _record(user, "", "2", "user's 2")
        _record(user, "", "1", "user's 1 again")
        _record(None, "phone-aaaaaaaa", "1", "visitor's 1")
        ids = _ids()
        assert ids["user's 2"] == f"u{user.pk}/2" and "user's 1 again" not in ids
        assert ids["visitor's 1"] == "vphone-aaaaaaaa/1"

        _migrate(BEFORE)  # backwards: ids as sent, except where two shoppers sent the same
        back = dict(old.objects.values_list("source", "client_event_id"))
        assert back == {
            "user's 1": None,
            "visitor's 1": None,
            "visitor's 7": "7",
            "squatter": f"u{user.pk}/2",
            "user's 2": "2",
            "order": "order:5:0",
            "no id": None,
        }
    finally:
        _migrate(_latest())
