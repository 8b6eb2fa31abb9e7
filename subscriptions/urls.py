from django.urls import path

from subscriptions import views

app_name = "subscriptions"
urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/confirm/<str:token>/", views.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/", views.preferences_request, name="preferences_request"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("subscribe/invitation/<str:token>/", views.invitation, name="invitation"),
    path("contact/", views.contact, name="contact"),
    path("privacy/", views.privacy, name="privacy"),
    path("join/", views.join, name="join"),
    path("join/confirm/<str:token>/", views.join_confirm, name="join_confirm"),
    path("join/<str:code>/", views.join, name="join_code"),
]
