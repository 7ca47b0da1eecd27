"""Sign-in, sign-out (POST only) and password change: Django's own views, the console's templates."""

from django.contrib.auth import views as auth_views
from django.urls import path

from dlrconsole.accounts.time_zone import time_zone

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Named apart from the admin's registration/password_change_*.html, which the admin's own
    # password pages use: those keep the admin's look.
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(template_name="registration/password_change.html"),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/password_changed.html"),
        name="password_change_done",
    ),
    path("account/time-zone/", time_zone, name="time-zone"),
]
