"""Moderation rules: comment states and the policy, pure functions over plain data."""
