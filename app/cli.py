"""Command-line helpers: ``flask token create USER_ID``."""

from __future__ import annotations

import click
from flask import Flask, current_app

from .auth import create_token


def register_cli(app: Flask) -> None:
    @app.cli.group("token")
    def token() -> None:
        """Development tokens."""

    @token.command("create")
    @click.argument("user_id")
    @click.option("--ttl", default=3600, show_default=True, help="Lifetime in seconds.")
    @click.option("--email", default=None, help="Optional email claim.")
    @click.option("--name", default=None, help="Optional name claim.")
    def create(user_id: str, ttl: int, email: str | None, name: str | None) -> None:
        """Print a token for USER_ID signed with BETTER_AUTH_SECRET (for /docs or curl)."""
        secret = current_app.config.get("BETTER_AUTH_SECRET")
        if not secret:
            raise click.ClickException("BETTER_AUTH_SECRET is not set; cannot sign a token.")
        click.echo(create_token(secret, user_id, ttl=ttl, email=email, name=name))
