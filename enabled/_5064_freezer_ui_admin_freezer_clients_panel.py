# Slug of the panel (also its folder, template folder and URL namespace).
PANEL = "freezer_clients"
# Dashboard the panel is added to.
PANEL_DASHBOARD = "admin"
# Panel group it is listed under (see _5060_freezer_ui_admin_panel_group.py).
PANEL_GROUP = "freezer_ui_admin"
# Python path of the panel class.
ADD_PANEL = "freezer_ui.dashboards.admin.freezer_clients.panel.Clients"
