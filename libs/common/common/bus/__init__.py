"""Bus wiring over RabbitMQ (aio-pika): connection, topology, consumers, request/reply."""

from common.bus.connection import Bus
from common.bus.consumer import Consumer, Handler, ReplyStream, Streaming, redelivered, reply_expected
from common.bus.processed import ProcessedMessages
from common.bus.rpc import Requester, RpcClient, RpcStream, Sent, StreamFeedback, StreamOverflow
from common.bus.topology import Topology
from common.bus.trust import Publishers

__all__ = [
    "Bus",
    "Consumer",
    "Handler",
    "ProcessedMessages",
    "Publishers",
    "ReplyStream",
    "Requester",
    "RpcClient",
    "RpcStream",
    "Sent",
    "StreamFeedback",
    "StreamOverflow",
    "Streaming",
    "Topology",
    "redelivered",
    "reply_expected",
]
