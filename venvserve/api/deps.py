"""Request-scoped access to the one Gateway of the app."""

from fastapi import Request

from ..gateway import Gateway


async def gateway(request: Request) -> Gateway:
    return request.app.state.gateway
