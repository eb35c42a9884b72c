# Slug of the panel (also its folder, template folder and URL namespace).
PANEL = "freezer_secrets"
# Dashboard the panel is added to.
PANEL_DASHBOARD = "project"
# Panel group it is listed under (see _5050_freezer_ui_panel_group.py).
PANEL_GROUP = "freezer_ui"
# Python path of the panel class.
ADD_PANEL = "freezer_ui.dashboards.project.freezer_secrets.panel.Secrets"
