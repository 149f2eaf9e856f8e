from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("products/", views.product_list, name="product-list"),
    path("products/<int:pk>/", views.product_detail, name="product-detail"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/add/<int:pk>/", views.cart_add, name="cart-add"),
    path("cart/update/<int:pk>/", views.cart_update, name="cart-update"),
    path("cart/remove/<int:pk>/", views.cart_remove, name="cart-remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_list, name="order-list"),
    path("orders/<slug:number>/", views.order_detail, name="order-detail"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/products/<int:pk>/", api.ProductDetailView.as_view(), name="api-product-detail"),
    # The API's schema and Swagger UI, as the app offers them: /api/schema/, /api/docs/.
    path("api/", include("recommendations.api.schema_urls")),
    path("", include("recommendations.urls")),
]
