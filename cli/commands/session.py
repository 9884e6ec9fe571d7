"""Building an API client from a command's ``--server-url``/``--token`` flags."""

from __future__ import annotations

import argparse

from cli.api_client import ApiClient
from cli.credentials import resolve


def client_for(args: argparse.Namespace) -> ApiClient:
    return ApiClient(resolve(args.server_url, args.token))
