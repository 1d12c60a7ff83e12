"""Adapters to the outside world: Trello, Figma and the loopback sandbox that imitates both."""
