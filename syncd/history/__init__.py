"""History for team leads: the store as it was at a past moment, and the weekly trends."""
