"""A lease in the database that keeps one training at a time (see :class:`TaskLock`)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import TaskLock


class Lease:
    """``with Lease("train", ttl) as lease: ... lease.renew()``; raises LockBusy when held."""

    def __init__(self, name: str, ttl_seconds: float, holder: str | None = None) -> None:
        self.name = name
        self.ttl = timedelta(seconds=ttl_seconds)
        self.holder = holder or uuid.uuid4().hex

    def acquire(self) -> bool:
        now = timezone.now()
        try:
            with transaction.atomic():
                TaskLock.objects.get_or_create(name=self.name)
        except IntegrityError:  # created concurrently by another worker: fine
            pass
        # One atomic UPDATE: taken only when free or expired.
        taken = TaskLock.objects.filter(
            Q(holder="") | Q(expires_at__lt=now) | Q(holder=self.holder), name=self.name
        ).update(holder=self.holder, expires_at=now + self.ttl)
        return taken == 1

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken by someone else)."""
        return (
            TaskLock.objects.filter(name=self.name, holder=self.holder).update(
                expires_at=timezone.now() + self.ttl
            )
            == 1
        )

    def hold(self) -> None:
        """Renew the lease, or raise :class:`LeaseLost` when another holder took it (this
        process paused past the lease, say): two trainings must never overlap."""
        if not self.renew():
            raise LeaseLost(self.name)

    def release(self) -> None:
        TaskLock.objects.filter(name=self.name, holder=self.holder).update(
            holder="", expires_at=None
        )

    def __enter__(self) -> Lease:
        if not self.acquire():
            raise LockBusy(self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LockBusy(RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"lock {name!r} is held by another worker")


class LeaseLost(RuntimeError):
    """The lease expired and was taken by someone else while we worked."""

    def __init__(self, name: str) -> None:
        super().__init__(f"lost the {name!r} lease: another run holds it; this one stops")
