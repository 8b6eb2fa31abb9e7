from __future__ import annotations

from django import forms

from issues.models import Publication
from subscriptions.models import Subscriber, Subscription, validate_single_line

EMAIL_ERRORS = {
    "required": "Enter your email address.",
    "invalid": "Enter a valid email address, like name@example.org.",
    "max_length": "An email address has at most %(limit_value)d characters.",
}


def _line(label: str, *, required: bool = False, max_length: int = 200) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=max_length,
        validators=[validate_single_line],
        error_messages={
            "required": f"Enter your {label.lower()}.",
            "max_length": f"{label} has at most %(limit_value)d characters.",
        },
    )


class HoneypotMixin(forms.Form):
    # Hidden from people by CSS; bots that fill every field give themselves away.
    website = forms.CharField(
        required=False,
        label="Leave this field empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def is_bot(self) -> bool:
        return bool(self.cleaned_data.get("website"))


class PublicationsField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("queryset", Publication.objects.filter(active=True))
        kwargs.setdefault("to_field_name", "slug")
        kwargs.setdefault(
            "error_messages",
            {
                "invalid_choice": "%(value)s is not a publication you can subscribe to.",
                "invalid_pk_value": "%(pk)s is not a publication you can subscribe to.",
            },
        )
        super().__init__(**kwargs)


class SubscribeForm(HoneypotMixin):
    email = forms.EmailField(label="Email address", max_length=254, error_messages=EMAIL_ERRORS)
    name = _line("Name")
    organization = _line("Organization")
    publications = PublicationsField(required=False, label="Publications")

    def clean_publications(self):
        chosen = list(self.cleaned_data["publications"])
        if chosen:
            return chosen
        # With a single active publication, it is implied.
        available = list(self.fields["publications"].queryset[:2])
        if len(available) == 1:
            return available
        raise forms.ValidationError("Choose at least one publication.")


class JoinForm(HoneypotMixin):
    code = forms.CharField(
        label="Code from your letter",
        max_length=40,
        help_text="Eight letters and digits, like ABCD-2345.",
        error_messages={
            "required": "Enter the code from your letter.",
            "max_length": "A code has eight letters and digits, like ABCD-2345.",
        },
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    email = forms.EmailField(label="Email address", max_length=254, error_messages=EMAIL_ERRORS)


class EmailForm(HoneypotMixin):
    email = forms.EmailField(label="Email address", max_length=254, error_messages=EMAIL_ERRORS)


class PreferencesForm(forms.Form):
    name = _line("Name")
    publications = PublicationsField(required=False, label="Publications")
    format = forms.ChoiceField(
        label="Format",
        choices=Subscription.Format.choices,
        widget=forms.RadioSelect,
        initial=Subscription.Format.HTML,
    )

    def __init__(self, *args, subscriber: Subscriber, **kwargs) -> None:
        open_subscriptions = list(subscriber.subscriptions.open().select_related("publication"))
        kwargs.setdefault(
            "initial",
            {
                "name": subscriber.name,
                "publications": [s.publication.slug for s in open_subscriptions],
                "format": open_subscriptions[0].format
                if open_subscriptions
                else Subscription.Format.HTML,
            },
        )
        super().__init__(*args, **kwargs)


class ContactForm(HoneypotMixin):
    name = _line("Name", required=True)
    email = forms.EmailField(label="Email address", max_length=254, error_messages=EMAIL_ERRORS)
    publication = forms.ModelChoiceField(
        queryset=Publication.objects.filter(active=True),
        to_field_name="slug",
        required=False,
        empty_label="Any publication",
        label="About",
    )
    subject = _line("Subject", required=True)
    body = forms.CharField(
        label="Message",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 8}),
        error_messages={
            "required": "Write your message.",
            "max_length": "A message has at most %(limit_value)d characters.",
        },
    )
