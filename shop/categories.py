"""Categories for the Online Retail catalogue, which has none of its own.

Each product gets the first category whose keywords appear in its description (whole
words, upper-case as in the data). Rules are ordered from specific to broad, so
"CHRISTMAS TREE T-LIGHT HOLDER" is Christmas, not Candles. The rest is "Gifts & more".
A few multi-word names decide before any rule (:data:`PHRASES`): a "HOT WATER BOTTLE TEA AND
SYMPATHY" is not kitchenware.
"""

from __future__ import annotations

import re

CATEGORY_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("Christmas", ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "NATIVITY")),
    ("Easter & seasonal", ("EASTER", "HALLOWEEN", "VALENTINE", "EGG")),
    (
        "Bags & storage",
        (
            "BAG",
            "BAGS",
            "TOTE",
            "STORAGE",
            "BOX",
            "BOXES",
            "TIN",
            "TINS",
            "BASKET",
            "HAMPER",
            "JAR",
            "CASE",
            "PURSE",
        ),
    ),
    (
        "Candles & lighting",
        (
            "CANDLE",
            "CANDLES",
            "T-LIGHT",
            "TLIGHT",
            "LANTERN",
            "LIGHT",
            "LIGHTS",
            "LAMP",
            "NIGHTLIGHT",
        ),
    ),
    (
        "Baking & kitchen",
        (
            "CAKE",
            "CAKESTAND",
            "BAKING",
            "CUTTERS",
            "APRON",
            "LUNCH",
            "JAM",
            "RECIPE",
            "SPOON",
            "TEA",
            "TEAPOT",
            "COFFEE",
            "MUG",
            "CUP",
            "CUPS",
            "SAUCER",
            "PLATE",
            "PLATES",
            "BOWL",
            "JUG",
            "GLASS",
            "TRAY",
            "NAPKINS",
            "CUTLERY",
            "BOTTLE",
            "DOILY",
            "KITCHEN",
            "CHOPSTICKS",
            "TUMBLER",
        ),
    ),
    (
        "Stationery & wrap",
        (
            "CARD",
            "CARDS",
            "WRAP",
            "PAPER",
            "NOTEBOOK",
            "PENCIL",
            "PENCILS",
            "PEN",
            "PENS",
            "STICKER",
            "STICKERS",
            "ENVELOPE",
            "TAPE",
            "RIBBON",
            "RIBBONS",
            "CALENDAR",
            "DIARY",
            "ERASER",
            "CHALK",
            "BUNTING",
            "BANNER",
            "STAMP",
        ),
    ),
    (
        "Toys & kids",
        (
            "CHILDREN",
            "CHILDRENS",
            "CHILD",
            "KIDS",
            "TOY",
            "TOYS",
            "DOLL",
            "DOLLY",
            "GAME",
            "GAMES",
            "PUZZLE",
            "SPACEBOY",
            "DOLLYGIRL",
            "TEDDY",
            "SKIPPING",
            "BALLOON",
            "BALLOONS",
            "PARTY",
            "JIGSAW",
            "CRAYONS",
            "COLOURING",
        ),
    ),
    (
        "Jewellery & accessories",
        (
            "NECKLACE",
            "BRACELET",
            "EARRINGS",
            "RING",
            "RINGS",
            "BROOCH",
            "HAIR",
            "CLIP",
            "CLIPS",
            "CHARM",
            "UMBRELLA",
            "SCARF",
            "GLOVES",
            "WALLET",
            "MIRROR",
        ),
    ),
    (
        "Garden & outdoor",
        (
            "GARDEN",
            "BIRD",
            "BIRDHOUSE",
            "PLANT",
            "PLANTER",
            "FLOWER",
            "POT",
            "WATERING",
            "PICNIC",
            "PARASOL",
            "WIND",
            "CHIME",
        ),
    ),
    (
        "Home decor",
        (
            "HEART",
            "HEARTS",
            "SIGN",
            "FRAME",
            "CLOCK",
            "CUSHION",
            "DOORMAT",
            "HOOK",
            "HOOKS",
            "HANGER",
            "HANGING",
            "VINTAGE",
            "WALL",
            "DECORATION",
            "WREATH",
            "ORNAMENT",
            "DOORSTOP",
            "DRAWER",
            "KNOB",
            "CABINET",
            "SHELF",
            "BLANKET",
            "THROW",
            "QUILT",
            "VASE",
        ),
    ),
]
DEFAULT_CATEGORY = "Gifts & more"

#: Names whose words mislead one by one ("BOTTLE", "TEA"): the phrase decides the category.
PHRASES = {"HOT WATER BOTTLE": "Home decor"}

_WORDS = re.compile(r"[A-Z][A-Z\-]*")
_PHRASE = re.compile("|".join(rf"\b{re.escape(phrase)}\b" for phrase in PHRASES))


def categorise(description: str) -> str:
    """The category name for a product description (case-insensitive)."""
    text = (description or "").upper()
    phrase = _PHRASE.search(text)
    if phrase is not None:
        return PHRASES[phrase.group(0)]
    words = set(_WORDS.findall(text))
    for name, keywords in CATEGORY_RULES:
        if words.intersection(keywords):
            return name
    return DEFAULT_CATEGORY


def all_category_names() -> list[str]:
    return [name for name, _ in CATEGORY_RULES] + [DEFAULT_CATEGORY]
