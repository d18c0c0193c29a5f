"""The moderation domain: the rules and the one place a comment's status changes.

``states`` (statuses and allowed moves) and ``policy`` (scores and settings in, a
decision out) are pure; ``moderate`` is the one entry point for every status change,
on rows locked through ``locks``; ``submit``, ``reports``, ``bulk``, ``authors`` and
``review`` are the operations the API and the scoring worker call.
"""
