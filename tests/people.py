"""Test identities: one proven Actor per role (tests import these instead of typing names)."""
from fraudlab.auth.actors import Actor


def analyst(name: str = "alice") -> Actor:
    return Actor(name, "analyst")


def reviewer(name: str = "rita") -> Actor:
    return Actor(name, "reviewer")


def manager(name: str = "mona") -> Actor:
    return Actor(name, "manager")


def scientist(name: str = "dana") -> Actor:
    return Actor(name, "data_scientist")


def admin(name: str = "adam") -> Actor:
    return Actor(name, "admin")
