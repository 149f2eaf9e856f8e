from django import forms
from django.contrib.auth.forms import UserCreationForm

from .cart import MAX_QUANTITY


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=False)

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class QuantityForm(forms.Form):
    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY, initial=1)
    source = forms.CharField(max_length=100, required=False)
