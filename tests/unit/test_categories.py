import pytest

from shop.categories import DEFAULT_CATEGORY, categorise


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "Candles & lighting"),
        ("CHRISTMAS TREE T-LIGHT HOLDER", "Christmas"),
        ("JUMBO BAG RED RETROSPOT", "Bags & storage"),
        ("REGENCY CAKESTAND 3 TIER", "Baking & kitchen"),
        ("PACK OF 72 RETROSPOT CAKE CASES", "Baking & kitchen"),
        ("", DEFAULT_CATEGORY),
        ("assorted colour bird ornament", "Garden & outdoor"),
        ("HOT WATER BOTTLE TEA AND SYMPATHY", "Home decor"),
        ("KNITTED UNION FLAG HOT WATER BOTTLE", "Home decor"),
        ("WATER BOTTLE", "Baking & kitchen"),
    ],
)
def test_categorise(description, expected):
    assert categorise(description) == expected
