"""Channel adapters: a source's native payload in, normalized contact events out. Pure: no I/O."""

from __future__ import annotations

from processors.adapters.amocrm import AmoCrmAdapter
from processors.adapters.base import Adapter, AdapterContext, AdapterError, SignatureError
from processors.adapters.email import EmailAdapter
from processors.adapters.freshdesk import FreshdeskAdapter
from processors.adapters.jira import JiraAdapter
from processors.adapters.outbound import OutboundAdapter
from processors.adapters.pbx import PbxAdapter
from processors.adapters.telegram import TelegramAdapter
from processors.adapters.webchat import WebchatAdapter
from processors.adapters.whatsapp import WhatsAppAdapter
from processors.adapters.zendesk import ZendeskAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        AmoCrmAdapter(),
        EmailAdapter(),
        FreshdeskAdapter(),
        JiraAdapter(),
        OutboundAdapter(),
        PbxAdapter(),
        TelegramAdapter(),
        WebchatAdapter(),
        WhatsAppAdapter(),
        ZendeskAdapter(),
    )
}

__all__ = ["ADAPTERS", "Adapter", "AdapterContext", "AdapterError", "SignatureError"]
