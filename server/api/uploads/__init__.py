"""Temporary uploads (API.md §5): the policy and upload service, its routes, the streaming form reader."""
