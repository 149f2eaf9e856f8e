"""What the app stores: the interaction log (training runs and related items follow)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Event(models.TextChoices):
    VIEW = "view", "View"
    ADD_TO_CART = "add_to_cart", "Add to cart"
    REMOVE_FROM_CART = "remove_from_cart", "Remove from cart"
    PURCHASE = "purchase", "Purchase"
    #: A click on a recommendation (its ``source`` names the placement and version).
    CLICK = "click", "Recommendation click"
    #: The shopper dismissed a recommended item ("not interested"): it leaves their lists for
    #: good, and a negative EVENT_WEIGHTS entry removes it from their row in training.
    NOT_INTERESTED = "not_interested", "Not interested"


class Interaction(models.Model):
    """One thing a shopper did with an item.

    Written by :func:`recommendations.tracking.record` only. A row belongs to a signed-in
    ``user`` or to an anonymous ``visitor_id`` (both once the visitor signs in and their
    anonymous history is merged). Deliberately no ``auto_now_add``: imports carry their
    own timestamps.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # covered by the (user, -created_at) index
    )
    visitor_id = models.CharField(max_length=64, blank=True, default="")
    item = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # an item's events are read by the (item, created_at) index
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    quantity = models.PositiveIntegerField(default=1)
    value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    source = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="The placement and model version that led here, e.g. 'product:related:v3'.",
    )
    client_event_id = models.CharField(
        max_length=140,
        null=True,
        blank=True,
        unique=True,
        help_text=(
            "A retried event with the same id is stored once. Ids sent by API clients are "
            "stored per shopper ('u<user id>/<id>' or 'v<visitor id>/<id>', see "
            "tracking.shopper_event_id); the shop's own are 'order:...' and 'import:...'."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Training: every event since a date, streamed in order.
            models.Index(fields=["created_at"], name="rec_interaction_created"),
            # Serving: one visitor's / one user's latest N events.
            models.Index(fields=["visitor_id", "-created_at"], name="rec_interaction_visitor"),
            models.Index(fields=["user", "-created_at"], name="rec_interaction_user"),
            models.Index(fields=["item", "created_at"], name="rec_interaction_item"),
        ]

    def __str__(self) -> str:
        who = f"user {self.user_id}" if self.user_id else f"visitor {self.visitor_id[:8]}"
        return f"{who} {self.event} item {self.item_id}"


class ModelVersion(models.Model):
    """One training run and, when it succeeded, the model it produced.

    At most one version is active: the one carousels and the API serve. Its related-item
    lists are written before it is activated, so activating switches model and lists at once.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        #: Trained, but its artifact is missing or differs from what was saved (the reason
        #: is in ``error``): never activated again, never loaded.
        BROKEN = "broken", "Broken"

    algorithm = models.CharField(max_length=32, default="vae")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    is_active = models.BooleanField(default=False)
    hyperparameters = models.JSONField(default=dict, blank=True)
    event_weights = models.JSONField(
        default=dict, blank=True, help_text="EVENT_WEIGHTS the version was trained with."
    )
    half_life_days = models.FloatField(
        null=True, blank=True, help_text="Time decay it was trained with (empty: none)."
    )
    device = models.CharField(max_length=32, blank=True)
    data_since = models.DateTimeField(null=True, blank=True, help_text="Oldest event used.")
    data_until = models.DateTimeField(null=True, blank=True, help_text="Newest event used.")
    n_events = models.PositiveBigIntegerField(default=0)
    n_users = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    training_curve = models.JSONField(default=list, blank=True)
    artifact = models.CharField(
        max_length=255, blank=True, help_text="The model file's name in the storage."
    )
    artifact_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the model file (empty: before 0009)."
    )
    artifact_size = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Bytes of the model file."
    )
    items_artifact = models.CharField(
        max_length=255,
        blank=True,
        help_text="The item-id map's name in the storage (empty: items.npz beside the model).",
    )
    items_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the item-id map file."
    )
    items_size = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Bytes of the item-id map file."
    )
    gate_passed = models.BooleanField(null=True, blank=True)
    gate_report = models.TextField(blank=True)
    activate_when_ready = models.BooleanField(
        default=True, help_text="Activate once related items are written, if the gate passes."
    )
    force_activate = models.BooleanField(
        default=False, help_text="Manual override: activate even if the gate fails."
    )
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        get_latest_by = "created_at"
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="rec_one_active_version",
            )
        ]

    def __str__(self) -> str:
        return f"v{self.pk} ({self.algorithm}, {self.status}{', active' if self.is_active else ''})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def metric(self, model: str, name: str) -> float | None:
        """A test metric of this run: ``model`` is ``"candidate"`` or a baseline name."""
        if model == "candidate":
            entry = self.metrics.get("candidate", {})
        else:
            entry = self.metrics.get("baselines", {}).get(model, {})
        value = entry.get(name)
        return float(value) if isinstance(value, int | float) else None


class RelatedItem(models.Model):
    """A precomputed neighbour of an item for one model version: one indexed read per carousel."""

    class Kind(models.TextChoices):
        SIMILAR = "similar", "Similar"
        BOUGHT_TOGETHER = "bought_together", "Bought together"

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="related_items"
    )
    item = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    related = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["version", "kind", "item", "rank"]
        indexes = [
            models.Index(fields=["version", "kind", "item", "rank"], name="rec_related_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.rank} of item {self.item_id}: {self.related_id}"


class NewItemColumn(models.Model):
    """An item a version does not know (added after its training), placed by its content: its
    predicted column of the version's item-item term (``learning.new_items``), top-k entries,
    and its predicted decoder row where the model has a Mult-VAE. ``indices`` are the
    version's model columns (int32), ``weights`` the entries (float32), ``decoder`` the row's
    weights then its bias (float32; empty without a VAE), all raw little-endian bytes.
    Replaced whenever the version's new items are placed again; an item the version knows
    never has one."""

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="new_item_columns"
    )
    item = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    indices = models.BinaryField()
    weights = models.BinaryField()
    decoder = models.BinaryField(blank=True, default=b"")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "item"]
        constraints = [
            models.UniqueConstraint(fields=["version", "item"], name="rec_new_item_once"),
        ]

    def __str__(self) -> str:
        return f"new item {self.item_id} placed in v{self.version_id}"


class TaskLock(models.Model):
    """A named lease in the database: one holder at a time, and it expires.

    A crashed worker cannot hold it forever: a lease not renewed before ``expires_at`` can be
    taken over. Works on every database Django supports (no Redis needed in eager mode).
    """

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"


# --- operations: merchandising, online metrics, experiments ----------------------------


class MerchandisingRule(models.Model):
    """A merchandiser's override, applied last to every list (:mod:`recommendations.rules`).

    - ``pin``: show ``item`` at ``position`` (1 = first) of the placement;
    - ``exclude``: never show ``item``, or any item of ``category``;
    - ``boost``: move items of ``category`` up, as if they ranked ``multiplier`` times higher.

    An empty ``placement`` means every placement. A rule is in force while ``is_active`` and
    ``starts_at <= now < ends_at`` (an empty bound is open).
    """

    class Kind(models.TextChoices):
        PIN = "pin", "Pin an item"
        EXCLUDE = "exclude", "Exclude an item or a category"
        BOOST = "boost", "Boost a category"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    placement = models.CharField(
        max_length=64,
        blank=True,
        help_text="The carousel it applies to (e.g. 'related', 'for_you'); empty: everywhere.",
    )
    item = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="The item pinned or excluded.",
    )
    category = models.CharField(
        max_length=64,
        blank=True,
        help_text="The category excluded or boosted (the adapter's category key).",
    )
    position = models.PositiveSmallIntegerField(default=1, help_text="Pins: 1 is the first slot.")
    multiplier = models.FloatField(default=2.0, help_text="Boosts: 2 ranks items twice as high.")
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: from now on.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until switched off.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placement", "kind", "position", "pk"]
        verbose_name = "merchandising rule"
        indexes = [models.Index(fields=["is_active", "ends_at"], name="rec_rule_active")]

    def __str__(self) -> str:
        return self.name

    def in_force(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.is_active
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )


class ManualRelatedItem(models.Model):
    """A hand-made "related" entry: wins over the model's list for ``item`` (ranked first)."""

    item = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        related_name="recommendations_manual_related",
        db_index=False,  # covered by the unique (item, related) constraint
    )
    related = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    rank = models.PositiveSmallIntegerField(default=1, help_text="1 is shown first.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item", "rank", "pk"]
        verbose_name = "manual related item"
        constraints = [
            models.UniqueConstraint(fields=["item", "related"], name="rec_manual_related_unique"),
            models.CheckConstraint(
                condition=~models.Q(item=models.F("related")), name="rec_manual_related_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} for item {self.item_id}: {self.related_id}"


class Experiment(models.Model):
    """An A/B test on one placement: each visitor is served one variant, chosen by a hash
    of their visitor id (stable across visits; see :mod:`recommendations.experiments`)."""

    name = models.CharField(max_length=100, unique=True)
    placement = models.CharField(
        max_length=64, help_text="The carousel under test, e.g. 'related' or 'for_you'."
    )
    is_active = models.BooleanField(default=True)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until switched off.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    def running(self, now=None) -> bool:
        now = now or timezone.now()
        return (
            self.is_active
            and self.starts_at <= now
            and (self.ends_at is None or now < self.ends_at)
        )


class ExperimentVariant(models.Model):
    """One arm of an experiment: what it serves and its share of the traffic."""

    class Kind(models.TextChoices):
        ACTIVE = "active", "The active model version"
        VERSION = "version", "A chosen model version"
        POPULAR = "popular", "No model: popularity fallbacks"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=32, help_text="Short label, e.g. 'A' or 'control'.")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ACTIVE)
    version = models.ForeignKey(
        ModelVersion,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="For 'a chosen model version' only.",
    )
    weight = models.PositiveSmallIntegerField(
        default=50, help_text="Share of the traffic, relative to the other variants' weights."
    )
    exploration_share = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=(
            "Share of the list's positions given to rarely shown items (0 to 1); empty: the "
            "placement's EXPLORATION setting."
        ),
    )

    class Meta:
        ordering = ["experiment", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="rec_variant_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.experiment} / {self.name}"


class Impression(models.Model):
    """One carousel shown to one shopper: the items, in order, and what produced them.

    Written in bulk by :mod:`recommendations.impressions` (one ``INSERT`` per page, after the
    response). No foreign-key constraints in the database: a row is a record of what was
    shown and must never fail because an item or an account changed since (the user is
    still erased with their account, by :mod:`recommendations.privacy`).
    """

    placement = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField(
        null=True, blank=True, help_text="The model version that produced the list."
    )
    experiment = models.ForeignKey(
        Experiment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # the partial (experiment, variant) index
    )
    variant = models.CharField(max_length=32, blank=True)
    item_ids = models.JSONField(default=list)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # the partial index below
    )
    visitor_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="rec_impression_created"),
            models.Index(
                fields=["experiment", "variant"],
                name="rec_impression_experiment",
                condition=models.Q(experiment__isnull=False),
            ),
            models.Index(fields=["visitor_id", "created_at"], name="rec_impression_visitor"),
            models.Index(
                fields=["user"], name="rec_impression_user", condition=models.Q(user__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.placement} ({len(self.item_ids)} items) at {self.created_at:%Y-%m-%d %H:%M}"


class OnlineMetrics(Impression):
    """The admin's online-metrics dashboard (a proxy: its own entry and permission)."""

    class Meta:
        proxy = True
        verbose_name = "online metrics"
        verbose_name_plural = "online metrics"


class CustomerInsight(models.Model):
    """What the purchase log says of one customer: how likely they still buy here, what they
    will spend, what prices they pay. Scored nightly (``learning.insights``); personal data,
    so erased and exported with the rest of a shopper's rows (``tracking.privacy``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    p_alive = models.FloatField(help_text="Probability that the customer still buys here.")
    churn_risk = models.FloatField(help_text="1 - the probability of a purchase in the horizon.")
    expected_orders = models.FloatField(help_text="Expected orders over the horizon.")
    expected_spend = models.FloatField(
        null=True, blank=True, help_text="Expected spend over the horizon (empty: no values)."
    )
    horizon_days = models.PositiveIntegerField()
    orders = models.PositiveIntegerField(help_text="Orders so far.")
    recency_days = models.FloatField(help_text="Days since the last order.")
    average_order_value = models.FloatField(null=True, blank=True)
    price_bands = models.JSONField(
        default=dict, blank=True, help_text="Usual unit price range paid, per category."
    )
    model = models.CharField(max_length=32, help_text="The model that scored the customer.")
    scored_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-churn_risk"]
        indexes = [
            models.Index(fields=["-churn_risk"], name="rec_insight_risk"),
            models.Index(fields=["-expected_spend"], name="rec_insight_value"),
        ]

    def __str__(self) -> str:
        return f"user {self.user_id}: risk {self.churn_risk:.0%}"


class ShopperConsent(models.Model):
    """A shopper's lasting choice about being tracked (``tracking.consent``).

    Kept on the account for a signed-in user and under the visitor id for an API client;
    a browser's anonymous visitor keeps theirs in a signed cookie instead. Erasing a
    shopper's data keeps this row (it is how their objection goes on being honoured);
    deleting the account deletes it.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    visitor_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    tracking_allowed = models.BooleanField(
        help_text="False: the shopper opted out (nothing recorded, nothing personal shown)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "shopper consent"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, visitor_id__isnull=True)
                    | models.Q(user__isnull=True, visitor_id__isnull=False)
                ),
                name="rec_consent_one_shopper",
            )
        ]

    def __str__(self) -> str:
        who = f"user {self.user_id}" if self.user_id else f"visitor {(self.visitor_id or '')[:8]}"
        return f"{who}: {'tracking allowed' if self.tracking_allowed else 'opted out'}"
