from django.urls import path

from dlrconsole.console import export, message, overview, reports, resend, search

app_name = "console"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("messages/", search.search, name="search"),
    path("messages/export.csv", export.export, name="export"),
    path("messages/<int:pk>/", message.message, name="message"),
    path("messages/<int:pk>/resend/", resend.resend, name="resend"),
    path("reports/", reports.report_list, name="reports"),
    path("reports/new/", reports.report_edit, name="report-new"),
    path("reports/<int:pk>/", reports.report_edit, name="report"),
    path("reports/<int:pk>/send/", reports.report_send, name="report-send"),
    path("reports/<int:pk>/delete/", reports.report_delete, name="report-delete"),
]
