"""Accounts, sessions, scope checks and the audit log (issue: district officials)."""
