"""tpx order-entry client: login, requests, replies, replay (see docs/PROTOCOL.md)."""

from .client import Client, LoginRejected, token_from_text
from .failover import FailoverClient
from . import wire

__all__ = ["Client", "FailoverClient", "LoginRejected", "token_from_text", "wire"]
