"""The AsyncAPI 3.0 document of every message, generated from the contracts.

    python -m common.asyncapi > docs/asyncapi.json     (make asyncapi)

Internal services that publish or consume our messages code against the committed file; a
test fails when it drifts from the contracts.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from common.contracts.catalog import CATALOG, MessageSpec
from common.contracts.envelope import SCHEMA_VERSION, envelope_model_for, reply_model_for

REF = "#/components/schemas/{model}"
NAMESPACE = "aisaas"


def _schemas() -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """Each model's `$ref` (validation mode), and the schemas they point to."""
    models: list[type[BaseModel]] = []
    for spec in CATALOG.values():
        models.append(envelope_model_for(spec.payload))
        if spec.reply is not None:
            models.append(reply_model_for(spec.reply))
    refs, document = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    return {model: refs[(model, "validation")] for model in models}, document.get("$defs", {})


def _message(spec: MessageSpec, ref: dict[str, str]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": spec.name,
        "summary": spec.summary,
        "contentType": "application/json",
        "payload": ref,
        "correlationId": {"location": "$message.header#/correlation_id"},
        "bindings": {"amqp": {"messageType": spec.name, "deliveryMode": 2, "bindingVersion": "0.3.0"}},
    }


def build() -> dict[str, Any]:
    refs, schemas = _schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in CATALOG.values():
        exchange = f"{NAMESPACE}.{'commands' if spec.kind == 'command' else 'events'}"
        messages[spec.name] = _message(spec, refs[envelope_model_for(spec.payload)])
        channels[spec.name] = {
            "address": spec.name,
            "description": f"Routing key {spec.name} on exchange {exchange}; consumed by the {spec.service} service; "
            f"published only by {', '.join(sorted(spec.publishers))} (the broker user's verified user_id).",
            "messages": {spec.name: {"$ref": f"#/components/messages/{spec.name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": exchange,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.3.0",
                }
            },
        }
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{spec.name}"},
            "summary": spec.summary,
            "messages": [{"$ref": f"#/channels/{spec.name}/messages/{spec.name}"}],
        }
        if spec.reply is not None:
            reply_name = f"{spec.name}Reply"
            messages[reply_name] = {
                "name": reply_name,
                "title": f"Reply to {spec.name}",
                "contentType": "application/json",
                "payload": refs[reply_model_for(spec.reply)],
                "correlationId": {"location": "$message.header#/correlation_id"},
            }
            channels[reply_name] = {
                "address": None,
                "description": (
                    "The requester's exclusive reply queue, named by the request's reply_to, "
                    "through the default exchange."
                ),
                "messages": {reply_name: {"$ref": f"#/components/messages/{reply_name}"}},
            }
            operation["reply"] = {
                "address": {"location": "$message.header#/reply_to"},
                "channel": {"$ref": f"#/channels/{reply_name}"},
                "messages": [{"$ref": f"#/channels/{reply_name}/messages/{reply_name}"}],
            }
        operations[f"{spec.service}.{spec.name}"] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "AI SaaS platform messages",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": (
                "Commands, replies and events exchanged over RabbitMQ. Every message is a JSON envelope "
                "(message id for deduplication, request id, acting user, deadline, W3C trace context) around "
                "a typed payload; unknown fields are refused. Exchange names carry the deployment's "
                f"BUS_NAMESPACE, shown here with the default `{NAMESPACE}`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {"rabbitmq": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0.9.1"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render(), end="")
