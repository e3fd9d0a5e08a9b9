"""A stand-in for the Globus Compute cloud service, for offline tests.

The real ``globus_compute_sdk.Executor`` talks to two things: the web
service (register a function, submit a batch of tasks) and an AMQP broker
it consumes its task group's results from. :class:`LoopbackService`
implements the web-service calls the Executor makes as the service does:
it combines the registered function's buffer with each task's arguments
into a ``Task`` message and hands it to a real endpoint engine
(``ProcessPoolEngine``, ``GlobusComputeEngine``), and publishes the
engine's ``Result`` message to the task group's queue on
:class:`LoopbackBroker`, a minimal AMQP 0-9-1 broker (just what pika's
consumer needs, framed with pika's own codec). The Executor's own result
watcher consumes, acknowledges and matches results with futures.
"""

from __future__ import annotations

import collections
import socket
import threading
import uuid
from typing import Any

import pika.frame  # type: ignore[import-untyped]
import pika.spec  # type: ignore[import-untyped]
from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import Task
from globus_compute_endpoint.engines.base import (  # type: ignore[import-untyped]
    GCFuture,
    GlobusComputeEngineBase,
)
from globus_compute_sdk.sdk.batch import Batch
from globus_compute_sdk.sdk.client import FunctionRegistrationData
from globus_compute_sdk.serialize import ComputeSerializer


class LoopbackBroker:
    """Queues of messages, delivered to the AMQP consumers of this process."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"amqp://guest:guest@127.0.0.1:{self._listener.getsockname()[1]}/"
        self._lock = threading.Lock()
        self._queues: dict[str, collections.deque[bytes]] = collections.defaultdict(
            collections.deque
        )
        self._consumers: dict[str, tuple[socket.socket, int, str]] = {}
        self._tags = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def publish(self, queue: str, body: bytes) -> None:
        with self._lock:
            self._queues[queue].append(body)
            self._flush(queue)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _flush(self, queue: str) -> None:
        consumer = self._consumers.get(queue)
        if consumer is None:
            return
        conn, channel, tag = consumer
        while self._queues[queue]:
            body = self._queues[queue].popleft()
            self._tags += 1
            deliver = pika.spec.Basic.Deliver(tag, self._tags, False, "", queue)
            header = pika.frame.Header(channel, len(body), pika.spec.BasicProperties())
            try:
                conn.sendall(
                    pika.frame.Method(channel, deliver).marshal()
                    + header.marshal()
                    + pika.frame.Body(channel, body).marshal()
                )
            except OSError:
                self._queues[queue].appendleft(body)
                return

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        def send(channel: int, method: Any) -> None:
            conn.sendall(pika.frame.Method(channel, method).marshal())

        buffer = b""
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
                while buffer:
                    used, frame = pika.frame.decode_frame(buffer)
                    if frame is None:
                        break
                    buffer = buffer[used:]
                    if isinstance(frame, pika.frame.ProtocolHeader):
                        send(0, pika.spec.Connection.Start(server_properties={}))
                    elif isinstance(frame, pika.frame.Method):
                        reply = self._on_method(conn, frame.channel_number, frame.method)
                        if reply is not None:
                            send(frame.channel_number, reply)
                        if isinstance(frame.method, pika.spec.Connection.Close):
                            return
        except OSError:
            return
        finally:
            with self._lock:
                for queue, (owner, _, _) in list(self._consumers.items()):
                    if owner is conn:
                        del self._consumers[queue]
            conn.close()

    def _on_method(self, conn: socket.socket, channel: int, method: Any) -> Any:
        spec = pika.spec
        if isinstance(method, spec.Connection.StartOk):
            return spec.Connection.Tune(channel_max=16, frame_max=131072, heartbeat=0)
        if isinstance(method, spec.Connection.Open):
            return spec.Connection.OpenOk()
        if isinstance(method, spec.Channel.Open):
            return spec.Channel.OpenOk()
        if isinstance(method, spec.Basic.Consume):
            tag = method.consumer_tag or f"ctag-{uuid.uuid4().hex}"
            conn.sendall(pika.frame.Method(channel, spec.Basic.ConsumeOk(tag)).marshal())
            with self._lock:
                self._consumers[method.queue] = (conn, channel, tag)
                self._flush(method.queue)
            return None
        if isinstance(method, spec.Channel.Close):
            return spec.Channel.CloseOk()
        if isinstance(method, spec.Connection.Close):
            return spec.Connection.CloseOk()
        return None  # Basic.Ack, Connection.TuneOk, Basic.Nack: nothing to say


class LoopbackService:
    """The web-service calls ``globus_compute_sdk.Executor`` makes, served locally.

    Args:
        engines: endpoint UUID -> a started engine.
        broker: where results go.
    """

    def __init__(self, engines: dict[uuid.UUID, GlobusComputeEngineBase], broker: LoopbackBroker):
        self.engines = engines
        self.broker = broker
        self.fx_serializer = ComputeSerializer()
        self.functions: dict[str, str] = {}
        self.batches: list[int] = []  # tasks per batch request

    def register_function(self, function: Any, **_options: Any) -> str:
        data = FunctionRegistrationData(function=function, serializer=self.fx_serializer)
        function_id = str(uuid.uuid4())
        assert data.function_code is not None
        self.functions[function_id] = data.function_code
        return function_id

    def create_batch(
        self,
        task_group_id: Any = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
        create_websocket_queue: bool = False,
        result_serializers: list[str] | None = None,
    ) -> Batch:
        return Batch(
            task_group_id,
            resource_specification,
            user_endpoint_config,
            create_websocket_queue,
            serializer=self.fx_serializer,
            result_serializers=result_serializers,
        )

    def batch_run(self, endpoint_id: Any, batch: Batch) -> dict[str, Any]:
        engine = self.engines[uuid.UUID(str(endpoint_id))]
        request = batch.prepare()
        group = str(request.get("task_group_id") or uuid.uuid4())
        tasks: dict[str, list[str]] = {}
        for function_id, payloads in request["tasks"].items():  # type: ignore[union-attr]
            for payload in payloads:
                task_id = uuid.uuid4()
                tasks.setdefault(function_id, []).append(str(task_id))
                message = Task(task_id=task_id, task_buffer=self.functions[function_id] + payload)
                future = GCFuture(task_id, function_id=function_id)
                future.add_done_callback(lambda done: self.broker.publish(group, done.result()))
                engine.submit(future, messagepack.pack(message), {}, batch.result_serializers)
        self.batches.append(sum(len(ids) for ids in tasks.values()))
        return {
            "tasks": tasks,
            "task_group_id": group,
            "request_id": str(uuid.uuid4()),
            "endpoint_id": str(endpoint_id),
        }

    def get_result_amqp_url(self) -> dict[str, str]:
        return {"queue_prefix": "", "connection_url": self.broker.url}

    def _log_version_mismatch(self, _details: Any) -> None:
        """The real client warns when worker and SDK versions differ: same here."""
