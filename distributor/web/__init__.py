"""The web app: the press office's dashboard, journalists' public pages, and the REST API.

`create_app(runtime)` in distributor.web.app builds it; `distributor web` serves it. Every
route calls the same core functions as the command line.
"""
