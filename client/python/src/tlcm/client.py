"""A small client of the tlcm.v1 gRPC API: generate() streams typed events, list_models()."""

from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple

import grpc

from tlcm.events import FORMATS, Event, Model, event_from_proto, model_from_proto
from tlcm.v1 import tlcm_service_pb2 as pb
from tlcm.v1 import tlcm_service_pb2_grpc as pb_grpc


class Error(Exception):
    """A call that ended with a gRPC status other than OK.

    `code` is the grpc.StatusCode (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE,
    DEADLINE_EXCEEDED, CANCELLED, UNAUTHENTICATED, INTERNAL: tlcm_service.proto says when each
    happens) and `message` the server's explanation.
    """

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "Error":
        return cls(error.code(), error.details() or "")


class Client:
    """A connection to one tlcm server. Thread-safe; close() it, or use it as a context manager.

    target: "host:port" (or any gRPC target such as "dns:///name:port").
    token: a bearer token, sent with every call when the server requires one.
    tls: connect with TLS. Implied by any of the PEM arguments: `root_certificates` (the CAs
        trusted for the server's certificate; None = the system's), `private_key` and
        `certificate_chain` (a client certificate, for mutual TLS).
    server_name: the name to check the server's certificate against, when it is not the host
        in `target` (e.g. a test certificate made for "localhost").
    options: further gRPC channel arguments, as (name, value) pairs.
    """

    def __init__(self, target: str, *, token: Optional[str] = None, tls: bool = False,
                 root_certificates: Optional[bytes] = None,
                 private_key: Optional[bytes] = None,
                 certificate_chain: Optional[bytes] = None,
                 server_name: Optional[str] = None,
                 options: Sequence[Tuple[str, object]] = ()):
        options = list(options)
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if tls or root_certificates or private_key or certificate_chain:
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key,
                                                       certificate_chain)
            self._channel = grpc.secure_channel(target, credentials, options)
        else:
            self._channel = grpc.insecure_channel(target, options)
        self._stub = pb_grpc.TlcmServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def list_models(self, *, timeout: Optional[float] = None) -> List[Model]:
        """The configured models with their limits and readiness. Raises Error."""
        try:
            response = self._stub.ListModels(pb.ListModelsRequest(), timeout=timeout,
                                             metadata=self._metadata)
        except grpc.RpcError as e:
            raise Error.from_rpc(e) from e
        return [model_from_proto(m) for m in response.models]

    def generate(self, prompt: str, *, model: str, prompt_2: str = "", steps: int = 0,
                 width: int = 0, height: int = 0, seed: Optional[int] = None,
                 num_images: int = 1, guidance_scale: Optional[float] = None,
                 sampler: str = "", format: str = "png", quality: int = 0,
                 previews: bool = False, request_id: str = "",
                 timeout: Optional[float] = None) -> Iterator[Event]:
        """Generates images for `prompt` and yields the request's events as they arrive.

        The events, in order: Queued; per batch Started, then Step for each denoising step
        (each followed by a Preview per image when `previews` is set), then its Image events;
        Metrics last. Zero (steps, width, height, quality) and empty (sampler, prompt_2) mean
        the model's default; seed None = a random seed chosen by the server (reported in
        every Image); format is "png", "jpeg" or "webp"; timeout in seconds (the call's
        deadline). The server checks every field (tlcm_service.proto states the rules) and
        answers a broken rule with INVALID_ARGUMENT naming it.

        Raises Error when the call ends with a status other than OK, ValueError for a
        `format` that is none of the three. Leaving the loop early (or closing the
        iterator) cancels the request.
        """
        if format not in FORMATS:
            raise ValueError(f"format: must be one of {', '.join(FORMATS)}, not {format!r:.40}")
        request = pb.GenerateRequest(
            model=model, prompt=prompt, prompt_2=prompt_2, steps=steps, width=width,
            height=height, num_images=num_images, sampler=sampler, format=FORMATS[format],
            quality=quality, stream_previews=previews, request_id=request_id)
        if seed is not None:
            request.seed = seed
        if guidance_scale is not None:
            request.guidance_scale = guidance_scale
        return self._stream(request, timeout)

    def _stream(self, request: pb.GenerateRequest, timeout: Optional[float]) -> Iterator[Event]:
        call = self._stub.Generate(request, timeout=timeout, metadata=self._metadata)
        try:
            for response in call:
                event = event_from_proto(response)
                if event is not None:
                    yield event
        except grpc.RpcError as e:
            raise Error.from_rpc(e) from e
        finally:
            call.cancel()  # nothing once the call has ended; otherwise the caller left early
