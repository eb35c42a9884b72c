"""Paste filter for the test freezer-api: stands in for keystonemiddleware's auth_token.

The token "project:user:role1,role2" becomes the headers auth_token would set after asking
Keystone; anything else is refused with 401, as an invalid token would be.
"""


def factory(global_conf, **local_conf):
    def make(app):
        def identify(environ, start_response):
            parts = environ.get("HTTP_X_AUTH_TOKEN", "").split(":")
            if len(parts) != 3:
                start_response("401 Unauthorized", [("Content-Type", "application/json")])
                return [b'{"title": "Unauthorized", "description": "invalid token"}']
            project, user, roles = parts
            environ.update(
                HTTP_X_IDENTITY_STATUS="Confirmed",
                HTTP_X_PROJECT_ID=project,
                HTTP_X_USER_ID=user,
                HTTP_X_ROLES=roles,
            )
            return app(environ, start_response)

        return identify

    return make
