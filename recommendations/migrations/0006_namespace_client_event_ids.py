# Written by hand.
"""Client event ids become unique per shopper.

Before this migration the API stored a client's ``client_event_id`` as sent, so one client
could take ids that another shopper's app would send later (they are often counters) and get
those events dropped as duplicates. From now on the API stores ``u<user id>/<id>`` or
``v<visitor id>/<id>`` (``tracking.shopper_event_id``). This data migration moves the ids
already stored into the same namespaces, so a retry of an old event is still recognised and an id
taken before the upgrade no longer blocks anyone. The shop's own ids (``order:``,
``import:``, ``buffer:``) are left as they are.
"""

from django.db import migrations
from django.db.models import Q

SERVER_PREFIXES = ("order:", "import:", "buffer:")
BATCH = 500


def _client_rows(Interaction):
    server = Q()
    for prefix in SERVER_PREFIXES:
        server |= Q(client_event_id__startswith=prefix)
    return Interaction.objects.filter(client_event_id__isnull=False).exclude(server)


def _rewrite(Interaction, new_ids: dict[int, str | None]) -> None:
    """Clear the rows' ids first, then write the new ones: written in place, one row's new id
    could still be another row's old one and trip the unique index mid-way."""
    pks = list(new_ids)
    for lo in range(0, len(pks), BATCH):
        Interaction.objects.filter(pk__in=pks[lo : lo + BATCH]).update(client_event_id=None)
    rows = [Interaction(pk=pk, client_event_id=cid) for pk, cid in new_ids.items() if cid]
    Interaction.objects.bulk_update(rows, ["client_event_id"], batch_size=BATCH)


def namespace_client_ids(apps, schema_editor):
    Interaction = apps.get_model("recommendations", "Interaction")
    rows = _client_rows(Interaction).values_list("pk", "user_id", "visitor_id", "client_event_id")
    new_ids = {
        pk: (f"u{user_id}/{cid}" if user_id is not None else f"v{visitor_id}/{cid}")
        for pk, user_id, visitor_id, cid in rows.iterator(chunk_size=BATCH)
    }
    _rewrite(Interaction, new_ids)


def strip_namespaces(apps, schema_editor):
    """Back to ids as sent. Where two shoppers had sent the same id, neither keeps it (the
    events stay; only the retry protection of those ids is lost)."""
    Interaction = apps.get_model("recommendations", "Interaction")
    rows = _client_rows(Interaction).values_list("pk", "client_event_id")
    stripped = {pk: cid.split("/", 1)[-1] for pk, cid in rows.iterator(chunk_size=BATCH)}
    counts: dict[str, int] = {}
    for cid in stripped.values():
        counts[cid] = counts.get(cid, 0) + 1
    wanted = [cid for cid in counts if cid.startswith(SERVER_PREFIXES)]
    for lo in range(0, len(wanted), BATCH):  # a client once sent what is now a shop's own id
        taken = Interaction.objects.filter(client_event_id__in=wanted[lo : lo + BATCH])
        for cid in taken.values_list("client_event_id", flat=True):
            counts[cid] += 1
    _rewrite(Interaction, {pk: cid if counts[cid] == 1 else None for pk, cid in stripped.items()})


class Migration(migrations.Migration):
    # Its own migration, not a step of 0005: on PostgreSQL the row updates leave deferred
    # foreign-key checks pending, and 0005's ALTER TABLE may not follow them in one transaction.
    dependencies = [
        ("recommendations", "0005_client_event_id_per_shopper"),
    ]

    operations = [
        migrations.RunPython(namespace_client_ids, strip_namespaces),
    ]
