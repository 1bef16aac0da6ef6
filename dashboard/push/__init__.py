"""The push process: every change of the state sent to every screen as it happens (docs/push.md)."""
