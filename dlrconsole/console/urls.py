from django.urls import path

from dlrconsole.console import channels, export, message, overview, policies, reports, resend, routes, search

app_name = "console"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("messages/", search.search, name="search"),
    path("routes/", routes.routes, name="routes"),
    path("flows/", routes.flows, name="flows"),
    path("messages/export.csv", export.export, name="export"),
    path("messages/<int:pk>/", message.message, name="message"),
    path("messages/<int:pk>/resend/", resend.resend, name="resend"),
    path("reports/", reports.report_list, name="reports"),
    path("reports/new/", reports.report_edit, name="report-new"),
    path("reports/<int:pk>/", reports.report_edit, name="report"),
    path("reports/<int:pk>/send/", reports.report_send, name="report-send"),
    path("reports/<int:pk>/delete/", reports.report_delete, name="report-delete"),
    path("policies/", policies.rules_list, name="policies"),
    path("policies/rules/new/", policies.rule_edit, name="rule-new"),
    path("policies/rules/<int:pk>/", policies.rule_edit, name="rule-edit"),
    path("policies/rules/<int:pk>/move/", policies.rule_move_view, name="rule-move"),
    path("policies/rules/<int:pk>/enabled/", policies.rule_enabled_view, name="rule-enabled"),
    path("policies/steps/", policies.rule_steps, name="rule-steps"),
    path("policies/which-rule/", policies.tester, name="policy-tester"),
    path("policies/channels/", channels.channels_list, name="channels"),
    path("policies/channels/new/", channels.channel_edit, name="channel-new"),
    path("policies/channels/<int:pk>/", channels.channel_edit, name="channel-edit"),
    path("policies/channels/<int:pk>/test/", channels.channel_test, name="channel-test"),
]
