"""The accounts room: users, roles, API keys, and people who sign in to the web app.

PUT HERE: creating users and keys, hashing and checking keys, the first-start owner (`service.py`);
plans and quota admission (`plans.py`, `quota.py`); passwords, invites, open sign-up, server-side
browser sessions and the sign-in rate limit (`people.py`).
DO NOT PUT HERE: HTTP (api/ calls `authenticate`, web/ calls `people`), cookies, anything about videos.
"""
