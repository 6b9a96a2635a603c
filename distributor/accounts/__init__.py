"""Accounts of the people who use the web app: users, passwords, API tokens and logins.

The command line (`distributor users`) and the web app call these same functions.
"""
