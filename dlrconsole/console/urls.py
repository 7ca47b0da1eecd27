from django.urls import path

from dlrconsole.console import export, message, overview, resend, routes, search

app_name = "console"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("messages/", search.search, name="search"),
    path("routes/", routes.routes, name="routes"),
    path("flows/", routes.flows, name="flows"),
    path("messages/export.csv", export.export, name="export"),
    path("messages/<int:pk>/", message.message, name="message"),
    path("messages/<int:pk>/resend/", resend.resend, name="resend"),
]
