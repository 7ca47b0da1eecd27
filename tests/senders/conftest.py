from tests.senders.http_server import closed_port_url, provider_api

__all__ = ["closed_port_url", "provider_api"]
