"""The accounts room: users, roles and API keys.

PUT HERE: creating users and keys, hashing and checking keys, the first-start owner.
DO NOT PUT HERE: HTTP (api/ calls `authenticate`), plans and quotas (their own module
here when they land), anything about videos.
"""
