"""A plain DRF product-detail endpoint: the shop's own API, and bench/serving's baseline."""

from __future__ import annotations

from rest_framework import generics, permissions, serializers

from .models import Product


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = "__all__"


class ProductDetailView(generics.RetrieveAPIView):
    """``GET /api/products/<pk>/``: one product on sale, as stored (the shop's pages hide
    deactivated products, and so does this)."""

    queryset = Product.objects.filter(is_active=True)
    serializer_class = ProductSerializer
    permission_classes = [permissions.AllowAny]
