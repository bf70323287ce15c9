"""The Kafka Connect REST calls the connectors provider makes, on top of JsonApi."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from components.http_api import ApiError, JsonApi, mask

__all__ = ["ConnectClient", "ValidationFailed"]


class ValidationFailed(ApiError):
    """Connect's validate endpoint found errors; the message lists them, key by key."""


class ConnectClient:
    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def validate(self, config: Mapping[str, str]) -> None:
        """Raise ValidationFailed with the connector's own messages when the config is bad."""
        plugin = quote(config["connector.class"], safe="")
        response = self.api.request("PUT", f"/connector-plugins/{plugin}/config/validate",
                                    dict(config))
        assert response is not None
        body = response.body or {}
        if body.get("error_count", 0) == 0:
            return
        problems = [
            f"{item['value']['name']}: {error}"
            for item in body.get("configs", [])
            for error in item.get("value", {}).get("errors", [])
        ]
        raise ValidationFailed(
            mask(
                f"connector {config.get('name')!r} failed Connect's validation "
                f"({body['error_count']} error(s)): " + "; ".join(problems),
                self.api.secrets,
            )
        )

    def put_config(self, name: str, config: Mapping[str, str]) -> dict[str, str]:
        """Create or replace (idempotent); retried while the workers rebalance (409)."""
        response = self.api.request("PUT", f"/connectors/{quote(name, safe='')}/config",
                                    dict(config), ok=(200, 201))
        assert response is not None
        return dict(response.body.get("config", config))

    def get_config(self, name: str) -> dict[str, str] | None:
        response = self.api.request("GET", f"/connectors/{quote(name, safe='')}/config",
                                    missing_ok=True)
        return None if response is None else dict(response.body)

    def delete(self, name: str) -> bool:
        """True if it existed; a connector already gone is not an error."""
        response = self.api.request("DELETE", f"/connectors/{quote(name, safe='')}",
                                    missing_ok=True)
        return response is not None
