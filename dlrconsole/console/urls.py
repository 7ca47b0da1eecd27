from django.urls import path

from dlrconsole.console import alerts, export, message, overview, reports, resend, search

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
    path("alerts/", alerts.alert_list, name="alerts"),
    path("alerts/<int:pk>/", alerts.alert_detail, name="alert"),
    path("alerts/<int:pk>/acknowledge/", alerts.alert_acknowledge_view, name="alert-acknowledge"),
    path("alerts/<int:pk>/comment/", alerts.alert_comment_view, name="alert-comment"),
    path("alerts/<int:pk>/snooze/", alerts.alert_snooze_view, name="alert-snooze"),
    path("alerts/<int:pk>/resolve/", alerts.alert_resolve_view, name="alert-resolve"),
    path("alerts/rules/", alerts.rule_list, name="alert-rules"),
    path("alerts/rules/new/", alerts.rule_edit, name="alert-rule-new"),
    path("alerts/rules/<int:pk>/", alerts.rule_edit, name="alert-rule"),
    path("alerts/rules/<int:pk>/delete/", alerts.rule_delete, name="alert-rule-delete"),
    path("alerts/channels/", alerts.channel_list, name="alert-channels"),
    path("alerts/channels/new/", alerts.channel_edit, name="alert-channel-new"),
    path("alerts/channels/<int:pk>/", alerts.channel_edit, name="alert-channel"),
    path("alerts/channels/<int:pk>/test/", alerts.channel_test, name="alert-channel-test"),
    path("alerts/channels/<int:pk>/delete/", alerts.channel_delete, name="alert-channel-delete"),
]
